"""Print a network's per-layer table: output shapes, parameters, multiply-adds and activation sizes.

    python tools/model_summary.py vgg16                       # 138.36 M parameters, 15.47 G MACs
    python tools/model_summary.py alexnet --input-size 227    # conv1 96x55x55, 34,944 parameters
    python tools/model_summary.py lenet5 --input-size 32 --num-classes 10 --option in_channels=1
    python tools/model_summary.py resnet50 --group layer1 --group layer2
    python tools/model_summary.py vgg19 --device meta   # shapes only: no memory, no initialisation

What is counted is defined in ``backbones/summary.py``.
"""

from __future__ import annotations

import argparse
import ast
from typing import Any

import torch

from backbones import CLASSIFIERS, build_classifier
from backbones.summary import summarize
from rcnn.config import ConfigError
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
    parser.add_argument("name", help=f"network: {', '.join(sorted(CLASSIFIERS))}")
    parser.add_argument("--input-size", type=int, default=224, help="image side in pixels (default 224)")
    parser.add_argument("--in-channels", type=int, default=0, help="image channels (default: the network's)")
    parser.add_argument("--num-classes", type=int, default=1000)
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


if __name__ == "__main__":
    raise SystemExit(main())
