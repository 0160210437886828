"""Train a detector (Faster R-CNN, Fast R-CNN, R-CNN) from a config, then evaluate it on the val split.

    python tools/train_detector.py --config configs/faster_rcnn/synthetic_resnet18.yaml
    python tools/train_detector.py --config FILE solver.max_iter=2000 model.backbone.weights=cls.pth
    python tools/train_detector.py --config FILE --resume              # latest checkpoint of output.dir
    python tools/train_detector.py --config FILE --resume PATH.pth
    python tools/train_detector.py --config FILE --overwrite           # start over in output.dir
    python tools/train_detector.py --config FILE model.weights=DETECTOR.pth   # fine-tune: a new run
    torchrun --nproc_per_node=2 tools/train_detector.py --config FILE  # DDP (gloo on CPU, nccl on GPU)

Writes to ``output.dir``: ``config.yaml`` (the resolved config: repeat the run with
``--config output.dir/config.yaml``), ``model_<iter>.pth`` checkpoints and ``last_checkpoint``,
``model_final.pth``, ``metrics.jsonl`` + TensorBoard events (with ``solver.vis_period=N``, also every N
iterations a val image with its ground truth and top proposals, and the PR curves after each evaluation:
:mod:`rcnn.tasks.tensorboard_pictures`), ``log.txt``, and after the final evaluation
``detections.json`` (COCO results) and ``metrics.json`` (COCO AP table). An ``output.dir`` that holds a
previous run (``last_checkpoint``, ``metrics.jsonl`` or ``model_final.pth``) is never reused silently:
without ``--resume`` or ``--overwrite`` the tool stops with exit 2 (:mod:`rcnn.tasks.run_dir`). On resume
``metrics.jsonl`` is appended to (lines an interrupted run logged after the checkpoint are dropped).

Exit status: 0 when done; 1 when training diverged (non-finite loss); 2 for a bad config, a bad dataset, a
missing file or an ``output.dir`` holding a previous run; ``128 + signal`` after SIGINT/SIGTERM (a
checkpoint was saved: ``--resume`` continues).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

import torch

from rcnn.config import ConfigError
from rcnn.config_schema import DetectionConfig
from rcnn.detectors.build import build_detector
from rcnn.engine.trainer import Trainer
from rcnn.evaluation.coco import format_table
from rcnn.tasks import cli
from rcnn.tasks.detection import (
    MetadataState,
    build_detection_dataset,
    build_detection_train_loader,
    detector_metadata,
    evaluate_detector,
)
from rcnn.tasks.detector_weights import load_detector_weights
from rcnn.tasks.rcnn2014 import train_rcnn
from rcnn.tasks.run_dir import check_output_dir
from rcnn.tasks.tensorboard_pictures import TensorBoardPictures
from rcnn.tasks.tool_args import (
    add_device_argument,
    add_resume_arguments,
    check_resume_arguments,
    with_device,
)
from rcnn.utils import comm

logger = logging.getLogger("rcnn.tools.train_detector")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_resume_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device_argument(parser)
    cli.add_config_arguments(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_resume_arguments(parser, args)
    args.overrides = with_device(args.overrides, args.device)
    return args


def train(args: argparse.Namespace) -> None:
    """Train (and evaluate) the detector of ``args.config``; errors are raised for :func:`cli.run_tool`."""
    cfg = cli.load_tool_config(args, DetectionConfig)
    check_output_dir(cfg.output.dir, resume=args.resume, overwrite=args.overwrite)
    progress = not args.no_progress
    if cfg.model.type == "rcnn":  # R-CNN (2014) trains in stages, in one process
        with cli.session(cfg) as run:
            train_rcnn(cfg, run.device, resume=args.resume, progress=progress)
        return
    with cli.session(cfg, distributed=True) as run:
        train_set = build_detection_dataset(cfg, "train")
        val_set = build_detection_dataset(cfg, "val")
        for dataset in (train_set, val_set):  # every image file, before training starts (no decoding)
            dataset.check_images()
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
        logger.info(
            "%d training images, %d val images, %d classes", len(train_set), len(val_set), num_classes
        )
        loader = build_detection_train_loader(cfg, train_set, rank=run.rank, world_size=run.world_size)
        pictures = TensorBoardPictures(cfg.solver.vis_period, val_set, run.output_dir)

        def eval_fn(eval_model: torch.nn.Module) -> dict[str, Any]:
            results: dict[str, Any] = {}
            if comm.is_main_process():
                results = evaluate_detector(
                    eval_model,
                    val_set,
                    run.device,
                    run.output_dir,
                    batch_size=cfg.test.ims_per_batch,
                    progress=progress,
                )
                logger.info("COCO evaluation on %s:\n%s", cfg.data.val_annotations, format_table(results))
                pictures.log_pr_curves(val_set.coco, os.path.join(run.output_dir, "detections.json"))
            comm.synchronize()
            return {k: v for k, v in results.items() if k != "per_category"}

        trainer = Trainer.from_config(
            cfg.solver,
            model,
            loader,
            sampler=loader.batch_sampler,
            output_dir=run.output_dir,
            eval_fn=eval_fn,
            extra_state={"metadata": MetadataState(detector_metadata(train_set))},
            hooks=[pictures],
            progress=progress,
        )
        if args.resume:
            trainer.resume(args.resume)
        trainer.train()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return cli.run_tool(lambda: train(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
