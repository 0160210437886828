"""A short training of a classifier from one of configs/classification/ on the synthetic set, through
:class:`rcnn.tasks.classifier_run.ClassifierRun` (the run ``tools/train_classifier.py`` makes): the
experiments that need a trained network (filters, multicrop) start here."""

from __future__ import annotations

import logging
import os

import torch

from rcnn.config import load_config
from rcnn.config_schema import ClassificationConfig
from rcnn.data.synthetic import make_classification_dataset
from rcnn.tasks.classifier_run import ClassifierRun, TrainResult

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(ROOT, "configs", "classification")

logger = logging.getLogger(__name__)


def synthetic_set(work_dir: str, train_per_class: int, val_per_class: int) -> str:
    """The synthetic classification set (64 px) under ``work_dir``, made once per size; returns its root."""
    root = os.path.join(work_dir, f"synthetic_{train_per_class}_{val_per_class}")
    if not os.path.isfile(os.path.join(root, "done")):
        make_classification_dataset(root, train_per_class, val_per_class, image_size=64, workers=1)
        open(os.path.join(root, "done"), "w").close()
    return root


def train_from_config(config: str, output_dir: str, overrides: list[str]) -> tuple[str, TrainResult]:
    """Train ``configs/classification/<config>`` with ``overrides`` into ``output_dir`` (a fresh folder);
    returns the path of ``model_final.pth`` and the run's result."""
    cfg = load_config(
        os.path.join(CONFIGS, config),
        ClassificationConfig,
        [*overrides, f"output.dir={output_dir}", "solver.device=cpu"],
    )
    run = ClassifierRun(cfg, torch.device("cpu"), progress=False)
    result = run.train()
    return os.path.join(output_dir, "model_final.pth"), result
