"""COCO box evaluation of a detections file.

    python tools/evaluate.py --gt datasets/synthetic/detection/val.json \
        --results outputs/faster_rcnn/detections.json [--output outputs/faster_rcnn/eval]

``--results`` is a COCO results JSON (a list of ``{"image_id", "category_id", "bbox": [x, y, w, h],
"score"}`` in the ground truth's image pixels and category ids), e.g. the ``detections.json`` written by
training or by another detector. Every image of ``--gt`` is evaluated (an image without detections counts
as missed). Prints the AP/AR table and the AP of each category and writes ``metrics.json`` to ``--output``
(default: the folder of the results file). Exit status 0 on success, 1 when a file is missing or invalid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def evaluate_files(
    gt: str | Path, results: str | Path, output_dir: str | Path | None = None
) -> dict[str, Any]:
    """Evaluate the COCO results file ``results`` against the ground truth ``gt``; print the table and
    write ``metrics.json`` to ``output_dir`` (default: beside ``results``). Returns the metrics."""
    from rcnn.evaluation.coco import evaluate_results_file, format_table, write_json_atomic

    metrics = evaluate_results_file(gt, results)
    print(format_table(metrics))
    out_dir = Path(output_dir) if output_dir else Path(results).resolve().parent
    path = write_json_atomic(out_dir / "metrics.json", metrics, indent=2)
    print(f"metrics -> {path}", file=sys.stderr)
    return metrics


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    files = parser.add_argument_group("evaluate a results file")
    files.add_argument("--gt", help="COCO ground-truth annotation file")
    files.add_argument("--results", help="COCO results file (detections) to evaluate")
    parser.add_argument("--output", help="folder for metrics.json (default: the folder of --results)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Results-file mode. A mode that runs a detector first (--config FILE --checkpoint CKPT [key=value ...])
    # dispatches before this point; --gt and --results are required only when it is not used.
    missing = [flag for flag, value in (("--gt", args.gt), ("--results", args.results)) if not value]
    if missing:
        parser.error(f"{' and '.join(missing)} required: evaluate with --gt ANN.json --results DETS.json")
    try:
        evaluate_files(args.gt, args.results, args.output)
    except (FileNotFoundError, ValueError) as e:
        print(f"evaluate: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
