"""Plot training runs from their ``metrics.jsonl``: the loss terms (smoothed), the learning rate and the
periodic evaluation (AP), several runs overlaid in one figure with one legend entry per run.

    python tools/plot_metrics.py outputs/faster_rcnn_synthetic [outputs/other_run ...] --output curves.png

A RUN_DIR is a training output folder (or a ``metrics.jsonl`` file); runs are named by their folder.
Exit status 2 when a run has no readable ``metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rcnn.engine.logging import read_metrics
from rcnn.visualization.curves import plot_training_curves


def run_name(path: str) -> str:
    path = os.path.abspath(path)
    if os.path.isfile(path):
        path = os.path.dirname(path)
    return os.path.basename(path.rstrip(os.sep)) or path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="training output folders")
    parser.add_argument("--output", required=True, help="the PNG to write")
    parser.add_argument("--smoothing", type=float, default=0.6, help="EMA weight of the losses (0: none)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.smoothing < 1.0:
        parser.error(f"--smoothing must be in [0, 1), got {args.smoothing}")
    runs = {}
    for path in args.runs:
        name = run_name(path)
        while name in runs:  # two runs in folders of the same name
            name += "'"
        try:
            runs[name] = read_metrics(path)
        except (OSError, json.JSONDecodeError) as e:
            print(f"error: {path}: no readable metrics.jsonl ({e})", file=sys.stderr)
            return 2
        if not runs[name]:
            print(f"error: {path}: metrics.jsonl is empty", file=sys.stderr)
            return 2
    try:
        out = plot_training_curves(runs, args.output, smoothing=args.smoothing)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(runs)} runs -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
