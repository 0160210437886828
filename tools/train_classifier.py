"""Pretrain a classification network on an ImageFolder dataset (ImageNet-style), e.g. a detector backbone.

    python tools/train_classifier.py                                   # synthetic default, CPU: ~2 min
    python tools/train_classifier.py --config configs/classification/resnet50_imagenet.yaml \\
        data.root=/data/imagenet output.dir=outputs/resnet50
    python tools/train_classifier.py --config FILE --resume            # continue from output.dir's latest
    python tools/train_classifier.py --config FILE --resume outputs/run/checkpoint_0003.pth
    python tools/train_classifier.py --config FILE --overwrite         # start over in output.dir
    torchrun --nproc_per_node=2 tools/train_classifier.py --config FILE   # DDP (gloo on CPU, nccl on GPU)

Writes to ``output.dir``: ``config.yaml`` (the resolved config), ``checkpoint_<epoch>.pth`` and
``last_checkpoint``, ``metrics.jsonl`` + TensorBoard events, ``log.txt``, and at the end
``model_final.pth`` (loads as a detector backbone: ``model.backbone.weights=<dir>/model_final.pth``) and
``final_metrics.json`` (top-1/top-5 error, centre-crop and 10-crop, data-time share). An ``output.dir``
that holds a previous run is never reused silently: without ``--resume`` or ``--overwrite`` the tool stops
with exit 2 (:mod:`rcnn.tasks.run_dir`).

Exit status: 0 when training finished, 2 for a bad config, a missing file (resume checkpoint,
dataset) or an ``output.dir`` holding a previous run,
``128 + signal`` after SIGINT/SIGTERM stopped training (a checkpoint was saved first; ``--resume`` goes on).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from rcnn.tasks.run_dir import check_output_dir
from rcnn.tasks.tool_args import add_device_argument, with_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = os.path.join(ROOT, "configs", "classification", "synthetic_resnet18.yaml")

logger = logging.getLogger("tools.train_classifier")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--config", default=DEFAULT_CONFIG, help="YAML config (default: the synthetic ResNet-18 recipe)"
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="PATH",
        help="continue training: from PATH, or without PATH from output.dir's last_checkpoint",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="start over in an output.dir that holds a previous run"
    )
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    add_device_argument(parser)
    parser.add_argument("overrides", nargs="*", help="config overrides, section.key=value")
    args = parser.parse_args(argv)
    if args.resume and args.overwrite:
        parser.error("--resume continues a run, --overwrite starts over: give one of them")
    args.overrides = with_device(args.overrides, args.device)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from rcnn.config import ConfigError, load_config, save_config
    from rcnn.config_schema import ClassificationConfig
    from rcnn.engine.logging import setup_logger
    from rcnn.engine.trainer import TrainingInterrupted
    from rcnn.tasks.classifier_run import ClassifierRun
    from rcnn.utils.comm import destroy_distributed, init_distributed, is_main_process, select_device

    try:
        cfg = load_config(args.config, ClassificationConfig, args.overrides)
        check_output_dir(cfg.output.dir, resume=args.resume, overwrite=args.overwrite)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    distributed = init_distributed(cfg.solver.device)
    try:
        setup_logger(cfg.output.dir)
        device = select_device(cfg.solver.device)
        if is_main_process():
            save_config(cfg, os.path.join(cfg.output.dir, "config.yaml"))
        logger.info("config %s -> %s (device %s)", args.config, cfg.output.dir, device)
        try:
            trainer = ClassifierRun(cfg, device, progress=not args.no_progress)
            if args.resume is not None:
                trainer.resume(args.resume)
        except (FileNotFoundError, ConfigError) as e:
            logger.error("%s", e)
            return 2
        try:
            result = trainer.train()
        except TrainingInterrupted as e:
            logger.warning("%s", e)
            return e.exit_code
    finally:
        if distributed:  # an exception on its way out may be this rank's alone: then leave without waiting
            destroy_distributed(barrier=sys.exc_info()[0] is None)
    m = result.metrics
    summary = f"top-1 error {100 * m['val_top1_err']:.2f}%, top-5 error {100 * m['val_top5_err']:.2f}%"
    if "val10_top1_err" in m:
        summary += f"; 10-crop top-1 {100 * m['val10_top1_err']:.2f}%, top-5 {100 * m['val10_top5_err']:.2f}%"
    logger.info(
        "done after %d epochs: %s; data wait %.0f%% of %.1f s training -> %s",
        result.epoch,
        summary,
        100 * m["data_time_share"],
        m["train_time_s"],
        os.path.join(cfg.output.dir, "model_final.pth"),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
