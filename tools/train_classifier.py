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

Exit status (:mod:`rcnn.tasks.cli`): 0 when training finished; 1 when it diverged (non-finite loss); 2 for
a user error, one line ``error: ...`` (a bad config, bad data, a missing file, a checkpoint that does not
fit, an ``output.dir`` holding a previous run; ``--debug`` or ``RCNN_DEBUG=1`` show the traceback);
``128 + signal`` after SIGINT/SIGTERM stopped training (a checkpoint was saved first; ``--resume`` goes on).
"""

from __future__ import annotations

import argparse
import logging
import os

from rcnn.config_schema import ClassificationConfig
from rcnn.tasks import cli
from rcnn.tasks.classifier_run import ClassifierRun
from rcnn.tasks.run_dir import check_output_dir
from rcnn.tasks.tool_args import (
    add_device_argument,
    add_resume_arguments,
    check_resume_arguments,
    with_device,
)

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
    add_resume_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    add_device_argument(parser)
    parser.add_argument("overrides", nargs="*", help="config overrides, section.key=value")
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    check_resume_arguments(parser, args)
    args.overrides = with_device(args.overrides, args.device)
    return args


def train(args: argparse.Namespace) -> None:
    """Train the classifier of ``args.config``; errors are raised for :func:`cli.run_tool`."""
    cfg = cli.load_tool_config(args, ClassificationConfig)
    check_output_dir(cfg.output.dir, resume=args.resume, overwrite=args.overwrite)
    with cli.session(cfg, distributed=True) as run:
        logger.info("config %s -> %s (device %s)", args.config, run.output_dir, run.device)
        trainer = ClassifierRun(cfg, run.device, progress=not args.no_progress)
        if args.resume is not None:
            trainer.resume(args.resume)
        result = trainer.train()
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return cli.run_tool(lambda: train(args), debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
