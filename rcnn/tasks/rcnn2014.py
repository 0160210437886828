"""Training R-CNN (Girshick et al., 2014) from a config: the stages in order, each resumable.

1. **Fine-tune** the network on warped proposals (:class:`rcnn.detectors.rcnn2014.finetune.FinetuneModel`)
   with the iteration-based :class:`rcnn.engine.trainer.Trainer` and ``solver.*`` (checkpoints in
   ``output.dir/finetune``; ``resume`` continues an interrupted run; a finished one,
   ``finetune/model_final.pth``, is reused).
2-5. **Extract** pool5 features into a feature cache, set the feature **scales**, train the **SVMs** and the
   **box regressors** (:mod:`rcnn.detectors.rcnn2014.train`).
6. Save ``output.dir/model_final.pth`` (:func:`rcnn.tasks.detection.save_detector`: the whole
   :class:`RCNN` state and the class metadata, loadable by ``tools/evaluate.py --config --checkpoint``) and
   COCO-evaluate on the val split (``metrics.json``).

Called by ``tools/train_detector.py`` after the shared prologue (:mod:`rcnn.tasks.cli`); errors are raised,
the tool maps them to exit codes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from rcnn.config import ConfigError
from rcnn.config_schema import DetectionConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.rcnn2014.feature_cache import FeatureCache
from rcnn.detectors.rcnn2014.finetune import FinetuneModel
from rcnn.detectors.rcnn2014.model import RCNN
from rcnn.detectors.rcnn2014.train import cache_dtype, cache_params, extract_features, train_heads
from rcnn.engine.trainer import Trainer
from rcnn.evaluation.coco import format_table
from rcnn.tasks.detection import (
    build_detection_dataset,
    build_detection_train_loader,
    detector_metadata,
    evaluate_detector,
    save_detector,
)
from rcnn.utils.io import load_checkpoint

logger = logging.getLogger(__name__)


def finetune(
    cfg: DetectionConfig, model: RCNN, train_set, out_dir: str, *, resume: str | None, progress: bool
) -> None:
    """Fine-tune ``model``'s network in place (stage 1); a finished run in ``out_dir`` is loaded instead."""
    r = cfg.model.rcnn
    wrapper = FinetuneModel(model, fg_iou=r.fg_iou, batch_pos=r.batch_pos, batch_neg=r.batch_neg)
    final = os.path.join(out_dir, "model_final.pth")
    if os.path.isfile(final):
        wrapper.load_state_dict(load_checkpoint(final)["model"])
        logger.info("fine-tuning already done: loaded %s (delete it to fine-tune again)", final)
        return
    loader = build_detection_train_loader(cfg, train_set)
    trainer = Trainer.from_config(
        cfg.solver, wrapper, loader, sampler=loader.batch_sampler, output_dir=out_dir, progress=progress
    )
    if resume:
        trainer.resume(resume)
    trainer.train()


def check_rcnn_config(cfg: DetectionConfig, world_size: int) -> None:
    """``ConfigError`` for what R-CNN cannot run: several processes, or no proposals."""
    if world_size > 1:
        raise ConfigError("model.type=rcnn trains in a single process; run it without torchrun")
    for key in ("train_proposals", "val_proposals"):
        if not getattr(cfg.data, key):
            raise ConfigError(f"model.type=rcnn needs data.{key} (tools/compute_proposals.py)")


def train_rcnn(
    cfg: DetectionConfig, device: torch.device, *, resume: str | None = None, progress: bool = True
) -> dict[str, Any]:
    """The whole R-CNN pipeline of ``cfg`` into ``cfg.output.dir`` on ``device``; returns the val metrics.

    Raises ``ConfigError`` / ``DatasetError`` / ``FileNotFoundError`` for bad input,
    :class:`~rcnn.engine.trainer.TrainingInterrupted` when fine-tuning is stopped (``resume`` continues),
    ``KeyboardInterrupt`` during feature extraction (complete chunks are kept: run again to continue)."""
    check_rcnn_config(cfg, int(os.environ.get("WORLD_SIZE", "1")))
    out = cfg.output.dir
    dtype = cache_dtype(cfg.model.rcnn.cache_dtype)
    train_set = build_detection_dataset(cfg, "train")
    extract_set = build_detection_dataset(cfg, "train", train=False)  # no augmentation, every image
    val_set = build_detection_dataset(cfg, "val")
    num_classes = cfg.model.num_classes or train_set.num_classes
    if num_classes != train_set.num_classes:
        raise ConfigError(
            f"model.num_classes={num_classes} but {cfg.data.train_annotations} has "
            f"{train_set.num_classes} categories"
        )
    model = build_detector(cfg.model, num_classes)
    logger.info(
        "R-CNN: %d training images, %d val images, %d classes", len(train_set), len(val_set), num_classes
    )
    if cfg.model.rcnn.finetune:
        finetune(cfg, model, train_set, os.path.join(out, "finetune"), resume=resume, progress=progress)
    model.to(device).eval()
    cache_dir = cfg.model.rcnn.cache_dir or os.path.join(out, "features")
    cache = FeatureCache(
        cache_dir, cache_params(cfg, model, num_classes), chunk_size=cfg.model.rcnn.chunk_size
    )
    try:
        extract_features(
            model,
            extract_set,
            cache,
            num_classes,
            dtype=dtype,
            num_workers=cfg.data.num_workers,
            progress=progress,
        )
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            "run the same command again to continue (complete feature chunks are kept)"
        ) from None
    svm_log = train_heads(model, cache, cfg, progress=progress)
    final = save_detector(
        os.path.join(out, "model_final.pth"), model, detector_metadata(train_set), svm_log=svm_log
    )
    logger.info("saved %s", final)
    metrics = evaluate_detector(
        model, val_set, device, out, batch_size=cfg.test.ims_per_batch, progress=progress
    )
    logger.info("COCO evaluation on %s:\n%s", cfg.data.val_annotations, format_table(metrics))
    return metrics
