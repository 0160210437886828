"""COCO box evaluation: of a trained detector on its config's val split, or of any detections file.

    python tools/evaluate.py --config configs/faster_rcnn/synthetic_resnet18.yaml \
        --checkpoint outputs/faster_rcnn_synthetic/model_final.pth [--output DIR] [key=value ...]
    python tools/evaluate.py --gt datasets/synthetic/detection/val.json \
        --results outputs/faster_rcnn/detections.json [--output outputs/faster_rcnn/eval]

``--results`` is a COCO results JSON (a list of ``{"image_id", "category_id", "bbox": [x, y, w, h],
"score"}`` in the ground truth's image pixels and category ids), e.g. the ``detections.json`` written by
training or by another detector. Every image of ``--gt`` is evaluated (an image without detections counts
as missed). Prints the AP/AR table and the AP of each category and writes ``metrics.json`` to ``--output``
(default: the folder of the results file). With ``--config``, the detector runs on the config's val split
first and ``detections.json`` is written beside ``metrics.json`` (default folder: ``output.dir``).
Exit status 0 on success, 2 for a missing or invalid file, a bad config or a checkpoint that does not fit
(one ``error:`` line, :mod:`rcnn.tasks.cli`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig
from rcnn.evaluation.coco import evaluate_results_file, format_table
from rcnn.tasks import cli
from rcnn.tasks.detection import build_detection_dataset, evaluate_detector, load_detector
from rcnn.utils.comm import select_device
from rcnn.utils.io import atomic_write_json


def evaluate_files(
    gt: str | Path, results: str | Path, output_dir: str | Path | None = None
) -> dict[str, Any]:
    """Evaluate the COCO results file ``results`` against the ground truth ``gt``; print the table and
    write ``metrics.json`` to ``output_dir`` (default: beside ``results``). Returns the metrics."""
    metrics = evaluate_results_file(gt, results)
    print(format_table(metrics))
    out_dir = Path(output_dir) if output_dir else Path(results).resolve().parent
    path = atomic_write_json(metrics, out_dir / "metrics.json")
    print(f"metrics -> {path}", file=sys.stderr)
    return metrics


def evaluate_checkpoint(
    config: str, checkpoint: str, output_dir: str | None = None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """Run the detector of ``config`` with the weights of ``checkpoint`` over the config's val split,
    print the table and write ``detections.json`` and ``metrics.json`` to ``output_dir``
    (default: the config's ``output.dir``). Returns the metrics."""
    cfg = load_config(config, DetectionConfig, overrides or [])
    device = select_device(cfg.solver.device)
    model, _ = load_detector(cfg, checkpoint, device)
    dataset = build_detection_dataset(cfg, "val")
    out_dir = output_dir or cfg.output.dir
    metrics = evaluate_detector(model, dataset, device, out_dir, batch_size=cfg.test.ims_per_batch)
    print(format_table(metrics))
    print(f"metrics -> {Path(out_dir) / 'metrics.json'}", file=sys.stderr)
    return metrics


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    files = parser.add_argument_group("evaluate a results file")
    files.add_argument("--gt", help="COCO ground-truth annotation file")
    files.add_argument("--results", help="COCO results file (detections) to evaluate")
    model = parser.add_argument_group("evaluate a trained detector on its config's val split")
    model.add_argument("--config", help="the detector's YAML config")
    model.add_argument("--checkpoint", help="model_final.pth or a training checkpoint")
    parser.add_argument("--output", help="folder for metrics.json (default: the folder of --results)")
    parser.add_argument("overrides", nargs="*", help="with --config: config overrides, section.key=value")
    cli.add_debug_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.config or args.checkpoint:
        if not (args.config and args.checkpoint):
            parser.error("--config and --checkpoint go together")

        def run() -> None:
            evaluate_checkpoint(args.config, args.checkpoint, args.output, args.overrides)

    else:
        if args.overrides:
            parser.error(f"config overrides {args.overrides} need --config")
        missing = [flag for flag, value in (("--gt", args.gt), ("--results", args.results)) if not value]
        if missing:
            parser.error(f"{' and '.join(missing)} required: evaluate with --gt ANN.json --results DETS.json")

        def run() -> None:
            evaluate_files(args.gt, args.results, args.output)

    # the evaluator's checks of detections and results files raise ValueError naming the file and entry
    return cli.run_tool(run, user_errors=(ValueError,), debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
