"""Evaluation: COCO box AP and classification error.

Submodules:

- :mod:`.coco`: ``COCOEvaluator`` (pycocotools), results files, the AP table;
- :mod:`.classification`: top-1 / top-5 error (``topk_errors``), ``evaluate_classifier`` with 10-crop
  testing and DDP reduction.
"""

from .classification import evaluate_classifier, topk_errors
from .coco import COCOEvaluator, evaluate_results, evaluate_results_file, format_table, load_results_file

__all__ = [
    "COCOEvaluator",
    "evaluate_classifier",
    "evaluate_results",
    "evaluate_results_file",
    "format_table",
    "load_results_file",
    "topk_errors",
]
