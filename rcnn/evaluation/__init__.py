"""Evaluation: COCO box AP (``coco``)."""

from .coco import COCOEvaluator, evaluate_results, evaluate_results_file, format_table, load_results_file

__all__ = ["COCOEvaluator", "evaluate_results", "evaluate_results_file", "format_table", "load_results_file"]
