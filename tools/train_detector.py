"""Train a detector (Faster R-CNN, Fast R-CNN, R-CNN) from a config, then evaluate it on the val split.

    python tools/train_detector.py --config configs/faster_rcnn/synthetic_resnet18.yaml
    python tools/train_detector.py --config FILE solver.max_iter=2000 model.backbone.weights=cls.pth
    python tools/train_detector.py --config FILE --resume              # latest checkpoint of output.dir
    python tools/train_detector.py --config FILE --resume PATH.pth
    python tools/train_detector.py --config FILE model.weights=DETECTOR.pth   # fine-tune: a new run
    torchrun --nproc_per_node=2 tools/train_detector.py --config FILE  # DDP (gloo on CPU, nccl on GPU)

Writes to ``output.dir``: ``config.yaml`` (the resolved config: repeat the run with
``--config output.dir/config.yaml``), ``model_<iter>.pth`` checkpoints and ``last_checkpoint``,
``model_final.pth``, ``metrics.jsonl`` + TensorBoard events, ``log.txt``, and after the final evaluation
``detections.json`` (COCO results) and ``metrics.json`` (COCO AP table).

Exit status: 0 when done; 1 when training diverged (non-finite loss); 2 for a bad config, a bad dataset or a
missing file; ``128 + signal`` after SIGINT/SIGTERM (a checkpoint was saved: ``--resume`` continues).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("rcnn.tools.train_detector")


class Metadata:
    """Class names and category ids saved in every checkpoint, so a model can be used on its own."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def state_dict(self) -> dict[str, Any]:
        return dict(self.values)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.values = dict(state)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="YAML config (configs/faster_rcnn/*.yaml, ...)")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="PATH",
                        help="continue from PATH, or from output.dir's last checkpoint")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", help="config overrides, section.key=value")
    return parser


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    # "--resume key=value ...": the optional PATH swallowed the first override
    if args.resume and "=" in args.resume and not os.path.exists(args.resume):
        args.overrides.insert(0, args.resume)
        args.resume = "latest"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from rcnn.config import ConfigError, load_config, save_config
    from rcnn.config_schema import DetectionConfig
    from rcnn.data.errors import DatasetError
    from rcnn.detectors.build import build_detector
    from rcnn.utils import comm as du
    from rcnn.tasks.detection import (
        build_detection_dataset,
        build_detection_train_loader,
        detector_metadata,
        evaluate_detector,
    )
    from rcnn.engine.logging import setup_logger
    from rcnn.tasks.detector_weights import load_detector_weights
    from rcnn.engine.trainer import Trainer, TrainingInterrupted
    from rcnn.evaluation.coco import format_table

    try:
        cfg = load_config(args.config, DetectionConfig, args.overrides)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if cfg.model.type == "rcnn":  # R-CNN (2014) trains in stages: rcnn/detectors/rcnn_train.py
        from rcnn.detectors.rcnn2014.train import main_for_config

        return main_for_config(cfg, resume=args.resume, progress=not args.no_progress)
    du.init_distributed(cfg.solver.device)
    rank, world_size = du.get_rank(), du.get_world_size()
    out = cfg.output.dir
    os.makedirs(out, exist_ok=True)
    setup_logger(out, rank)
    if rank == 0:
        save_config(cfg, os.path.join(out, "config.yaml"))
    seed_everything(cfg.solver.seed + rank)

    try:
        train_set = build_detection_dataset(cfg, "train")
        val_set = build_detection_dataset(cfg, "val")
        if cfg.model.type != "faster_rcnn" and not cfg.data.train_proposals:
            raise ConfigError(
                f"model.type={cfg.model.type} needs data.train_proposals (tools/compute_proposals.py)"
            )
        num_classes = cfg.model.num_classes or train_set.num_classes
        if num_classes != train_set.num_classes:
            raise ConfigError(
                f"model.num_classes={num_classes} but {cfg.data.train_annotations} has "
                f"{train_set.num_classes} categories"
            )
        model = build_detector(cfg.model, num_classes)
        if cfg.model.weights:  # fine-tune a trained detector; --resume, if given, replaces these weights
            load_detector_weights(model, cfg.model.weights, train_set.class_names)
        if cfg.solver.channels_last:
            if not hasattr(model, "use_channels_last"):
                raise ConfigError(f"solver.channels_last: not supported by model.type {cfg.model.type!r}")
            model.use_channels_last()  # same function and gradients; oneDNN skips its layout reorders
    except (ConfigError, DatasetError, FileNotFoundError) as e:
        logger.error("%s", e)
        return 2
    logger.info("%d training images, %d val images, %d classes", len(train_set), len(val_set), num_classes)

    loader = build_detection_train_loader(cfg, train_set, rank=rank, world_size=world_size)
    device = du.select_device(cfg.solver.device)

    def eval_fn(eval_model: torch.nn.Module) -> dict[str, Any]:
        results: dict[str, Any] = {}
        if du.is_main_process():
            results = evaluate_detector(
                eval_model,
                val_set,
                device,
                out,
                batch_size=cfg.test.ims_per_batch,
                progress=not args.no_progress,
            )
            logger.info("COCO evaluation on %s:\n%s", cfg.data.val_annotations, format_table(results))
        du.synchronize()
        return {k: v for k, v in results.items() if k != "per_category"}

    trainer = Trainer.from_config(
        cfg.solver,
        model,
        loader,
        sampler=loader.batch_sampler,
        output_dir=out,
        eval_fn=eval_fn,
        extra_state={"metadata": Metadata(detector_metadata(train_set))},
        progress=not args.no_progress,
    )
    try:
        if args.resume:
            trainer.resume(args.resume)
        trainer.train()
    except FileNotFoundError as e:
        logger.error("%s", e)
        return 2
    except TrainingInterrupted as e:
        logger.warning("%s", e)
        return e.exit_code
    except FloatingPointError as e:
        logger.error("%s", e)
        return 1
    finally:  # an exception on its way out may be this rank's alone: then leave without waiting
        du.destroy_distributed(barrier=sys.exc_info()[0] is None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
