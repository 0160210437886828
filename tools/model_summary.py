"""Print a network's per-layer table, or a whole detector's parameters and multiply-adds by part.

    python tools/model_summary.py vgg16                       # 138.36 M parameters, 15.47 G MACs
    python tools/model_summary.py alexnet --input-size 227    # conv1 96x55x55, 34,944 parameters
    python tools/model_summary.py lenet5 --input-size 32 --num-classes 10 --option in_channels=1
    python tools/model_summary.py resnet50 --group layer1 --group layer2
    python tools/model_summary.py vgg19 --device meta   # shapes only: no memory, no initialisation

A detector from its config: trunk, RPN, region head (on the test-time number of RoIs) and predictor,
per image, at the config's test size (test.min_size x test.max_size) unless --input-size H W is given:

    python tools/model_summary.py --config configs/faster_rcnn/vgg16.yaml --num-classes 80 --device meta
    python tools/model_summary.py --config configs/faster_rcnn/synthetic_resnet18.yaml model.num_classes=9
    python tools/model_summary.py --config FILE --input-size 800 1333 --rois 1000

What is counted is defined in ``backbones/summary.py`` (networks) and ``rcnn/detectors/summary.py``
(detectors).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import os
from typing import Any

import torch

from backbones import CLASSIFIERS, build_classifier
from backbones.summary import summarize
from rcnn.config import ConfigError, load_config
from rcnn.config_schema import DetectionConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.summary import summarize_detector
from rcnn.tasks import cli


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a plain string, e.g. activation=relu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "name",
        nargs="*",
        metavar="NAME | KEY=VALUE",
        help=f"network: {', '.join(sorted(CLASSIFIERS))}; with --config: config overrides",
    )
    parser.add_argument("--config", help="a detector config (configs/faster_rcnn/*.yaml): the whole detector")
    parser.add_argument(
        "--input-size",
        type=int,
        nargs="+",
        metavar="N",
        help="image side in pixels (default 224); with --config: H W (default test.min_size test.max_size)",
    )
    parser.add_argument("--in-channels", type=int, default=0, help="image channels (default: the network's)")
    parser.add_argument(
        "--num-classes",
        type=int,
        help="default 1000; with --config: model.num_classes, else the categories of data.train_annotations",
    )
    parser.add_argument(
        "--rois", type=int, help="with --config: RoIs per image (default: model.rpn.post_nms_top_n_test)"
    )
    parser.add_argument(
        "--device", default="cpu", help="'cpu', 'cuda', or 'meta' (tensors without data: instant, same table)"
    )
    parser.add_argument(
        "--option",
        "-o",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="builder option",
    )
    parser.add_argument(
        "--group", action="append", default=[], metavar="PREFIX", help="also print the totals of a submodule"
    )
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.config:
        return cli.run_tool(lambda: detector_summary(args))
    if len(args.name) != 1:
        parser.error("give one network NAME, or --config FILE")
    args.name = args.name[0]
    if args.input_size is None:
        args.input_size = [224]
    if len(args.input_size) != 1:
        parser.error("--input-size takes one side N for a network")
    args.input_size = args.input_size[0]
    if args.num_classes is None:
        args.num_classes = 1000

    return cli.run_tool(lambda: print_summary(args), debug=args.debug)


def print_summary(args: argparse.Namespace) -> None:
    """Print the table of ``args.name``; a bad name, option, input size or group is a ``ConfigError``
    (one ``error:`` line, exit 2)."""
    options = dict(args.option)
    try:
        with torch.device(args.device):
            model = build_classifier(args.name, num_classes=args.num_classes, **options)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ConfigError(e.args[0] if e.args else e) from None
    channels = args.in_channels or options.get("in_channels", 3)
    try:
        summary = summarize(model, (channels, args.input_size, args.input_size), name=args.name)
    except RuntimeError as e:
        raise ConfigError(
            f"{args.name} cannot run on a {args.input_size}x{args.input_size} input: {e}"
        ) from None
    print(summary.table())
    for prefix in args.group:
        try:
            g = summary.by_prefix(prefix)
        except KeyError as e:
            raise ConfigError(e.args[0]) from None
        print(f"  {prefix}: {g.params:,} parameters, {g.macs:,} MACs, {g.activations:,} activations")


def _num_classes(cfg: Any) -> int:
    """model.num_classes, else the number of categories in data.train_annotations."""
    if cfg.model.num_classes:
        return cfg.model.num_classes
    path = cfg.data.train_annotations
    if not os.path.isfile(path):
        raise ValueError(
            f"model.num_classes is 0 and {path} (data.train_annotations) is not there: pass --num-classes"
        )
    with open(path, encoding="utf-8") as f:
        return len(json.load(f).get("categories", []))


def detector_summary(args: argparse.Namespace) -> None:
    """--config mode: the whole detector, by part (rcnn/detectors/summary.py). A bad config, size or class
    count is a ``ConfigError`` (one ``error:`` line, exit 2)."""
    cfg = load_config(args.config, DetectionConfig, args.name)
    if cfg.model.type == "rcnn":
        raise ConfigError("model.type=rcnn: R-CNN (2014) runs the network per crop; summarise the network")
    size = args.input_size or [cfg.test.min_size, cfg.test.max_size]
    if len(size) not in (1, 2):
        raise ConfigError(f"--input-size takes H W (or one side), got {len(size)} values")
    height, width = size[0], size[-1]
    try:
        num_classes = args.num_classes or _num_classes(cfg)
    except ValueError as e:
        raise ConfigError(e.args[0]) from None
    # Counts need shapes only: skip reading the weights file.
    model_cfg = dataclasses.replace(cfg.model, backbone=dataclasses.replace(cfg.model.backbone, weights=""))
    try:
        with torch.device(args.device):
            model = build_detector(model_cfg, num_classes)
        summary = summarize_detector(
            model, (height, width), num_rois=args.rois, name=f"{cfg.model.backbone.name} {cfg.model.type}"
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(e.args[0] if e.args else str(e)) from None
    except RuntimeError as e:
        raise ConfigError(f"{args.config} cannot run on a {height}x{width} image: {e}") from None
    print(summary.table())


if __name__ == "__main__":
    raise SystemExit(main())
