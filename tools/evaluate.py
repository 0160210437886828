"""COCO box evaluation: of a trained detector on its config's val split, or of any detections file.

    python tools/evaluate.py --config configs/faster_rcnn/synthetic_resnet18.yaml \
        --checkpoint outputs/faster_rcnn_synthetic/model_final.pth [--output DIR] [--device cuda] \
        [key=value ...]
    python tools/evaluate.py --gt datasets/synthetic/detection/val.json \
        --results outputs/faster_rcnn/detections.json [--output DIR]
    python tools/evaluate.py --gt datasets/synthetic/detection/val.json \
        --proposals outputs/proposals_synthetic/val [--output DIR]      # proposal quality

``--results`` is a COCO results JSON (a list of ``{"image_id", "category_id", "bbox": [x, y, w, h],
"score"}`` in the ground truth's image pixels and category ids), e.g. the ``detections.json`` written by
training or by another detector. Every image of ``--gt`` is evaluated (an image without detections counts
as missed). Prints the AP/AR table and the AP of each category and writes ``metrics.json`` to ``--output``
(default: ``eval/`` beside the results file). With ``--config``, the detector runs on the config's val
split first (on ``--device``, which overrides ``solver.device``) and ``detections.json`` is written beside
``metrics.json`` (default folder: ``output.dir/eval/``). The defaults never replace the ``metrics.json`` /
``detections.json`` that training wrote into ``output.dir``.

``--proposals FILE_OR_CACHE`` scores proposals instead of detections: a folder of ``<image_id>.npy`` (the
cache of ``tools/compute_proposals.py``, selective search's or an RPN's) or an ``.npz``, against the
non-crowd boxes of ``--gt`` (or of the val split of ``--config``). It prints recall at IoU 0.5 / 0.7,
average recall (AR, IoU 0.5:0.95) and MABO for the best 100 / 300 / 1000 proposals of each image and for
all, and writes ``proposals_<name>.json`` and the picture ``proposals_<name>.png`` (recall against IoU,
recall against the number of proposals) to ``--output`` (default: ``eval/`` beside the proposals).
Exit status 0 on success, 2 for a missing or invalid file, a bad config or a checkpoint that does not fit
(one ``error:`` line, :mod:`rcnn.tasks.cli`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig
from rcnn.evaluation.coco import format_table, load_coco, load_results_file
from rcnn.evaluation.report import write_evaluation_report
from rcnn.proposals.cache import ProposalsReader
from rcnn.proposals.quality import format_quality, proposal_quality
from rcnn.tasks import cli
from rcnn.tasks.detection import build_detection_dataset, evaluate_detector, load_detector
from rcnn.tasks.tool_args import add_device_argument, with_device
from rcnn.utils.comm import select_device
from rcnn.utils.io import atomic_write_json
from rcnn.visualization.proposal_plots import plot_proposal_recall

EVAL_DIR = "eval"  # the default output folder, inside output.dir or beside the results file


def evaluate_files(
    gt: str | Path, results: str | Path, output_dir: str | Path | None = None, **analysis: Any
) -> dict[str, Any]:
    """Evaluate the COCO results file ``results`` against the ground truth ``gt``; print the table and
    write ``metrics.json`` and the analysis (:func:`rcnn.evaluation.report.write_evaluation_report`, whose
    keyword arguments ``analysis`` are) to ``output_dir`` (default: ``eval/`` beside ``results``). Returns
    the metrics."""
    out_dir = Path(output_dir) if output_dir else Path(results).resolve().parent / EVAL_DIR
    coco_gt = load_coco(gt)
    metrics = write_evaluation_report(coco_gt, load_results_file(results, coco_gt), out_dir, **analysis)
    if "mAP" in metrics:
        print(f"{metrics['metric']} mAP (IoU 0.5): {metrics['mAP']:.4f}")
    print(format_table(metrics))
    path = atomic_write_json(metrics, out_dir / "metrics.json")
    print(f"metrics -> {path}", file=sys.stderr)
    return metrics


def evaluate_proposals(
    gt: str | Path, proposals: str | Path, output_dir: str | Path | None = None
) -> dict[str, Any]:
    """Score the proposals of ``proposals`` (a folder of ``<image_id>.npy`` or an ``.npz``) on every image
    of the COCO file ``gt`` against its non-crowd boxes (:func:`rcnn.proposals.quality.proposal_quality`);
    print the table and write ``proposals_<name>.json`` / ``.png`` to ``output_dir`` (default: ``eval/``
    beside ``proposals``). An image without proposals is an error naming it. Returns the scores."""
    source = Path(proposals).resolve()
    name = source.stem
    out_dir = Path(output_dir) if output_dir else source.parent / EVAL_DIR
    coco_gt = load_coco(gt)
    boxes, gts, labels = [], [], []
    with ProposalsReader(source) as reader:
        for image_id in sorted(coco_gt.imgs):
            try:
                boxes.append(reader.get(image_id))
            except KeyError as e:  # the message names the image and the file
                raise FileNotFoundError(e.args[0]) from None
            anns = [a for a in coco_gt.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
            xywh = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
            gts.append(np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1))
            labels.append(np.asarray([a["category_id"] for a in anns], dtype=np.int64))
    quality = {
        "proposals": str(source),
        "gt": str(Path(gt).resolve()),
        **proposal_quality(boxes, gts, labels),
    }
    print(format_quality(name, quality))
    path = atomic_write_json(quality, out_dir / f"proposals_{name}.json")
    picture = plot_proposal_recall(quality, out_dir / f"proposals_{name}.png", name=name)
    print(f"proposal quality -> {path}, {picture}", file=sys.stderr)
    return quality


def evaluate_checkpoint(
    config: str,
    checkpoint: str,
    output_dir: str | None = None,
    overrides: list[str] | None = None,
    device: str | None = None,
    **analysis: Any,
) -> dict[str, Any]:
    """Run the detector of ``config`` with the weights of ``checkpoint`` over the config's val split,
    print the table and write ``detections.json``, ``metrics.json`` and the analysis to ``output_dir``
    (default: ``eval/`` in the config's ``output.dir``); ``device`` overrides ``solver.device``.
    Returns the metrics."""
    cfg = load_config(config, DetectionConfig, with_device(overrides, device))
    torch_device = select_device(cfg.solver.device)
    model, _ = load_detector(cfg, checkpoint, torch_device)
    dataset = build_detection_dataset(cfg, "val")
    out_dir = output_dir or os.path.join(cfg.output.dir, EVAL_DIR)
    evaluate_detector(model, dataset, torch_device, out_dir, batch_size=cfg.test.ims_per_batch)
    # the analysis (and the VOC metric) of the detections.json just written; metrics.json is rewritten
    analysis.setdefault("images_dir", cfg.data.val_images)
    return evaluate_files(cfg.data.val_annotations, Path(out_dir) / "detections.json", out_dir, **analysis)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    files = parser.add_argument_group("evaluate a results file")
    files.add_argument("--gt", help="COCO ground-truth annotation file")
    files.add_argument("--results", help="COCO results file (detections) to evaluate")
    files.add_argument(
        "--proposals",
        metavar="FILE_OR_CACHE",
        help="score proposals (a folder of <image_id>.npy or an .npz) against --gt or --config's val split",
    )
    model = parser.add_argument_group("evaluate a trained detector on its config's val split")
    model.add_argument("--config", help="the detector's YAML config")
    model.add_argument("--checkpoint", help="model_final.pth or a training checkpoint")
    parser.add_argument(
        "--output", help="folder for metrics.json (default: output.dir/eval, or eval/ beside --results)"
    )
    analysis = parser.add_argument_group("analysis (written beside metrics.json)")
    analysis.add_argument(
        "--metric",
        choices=["coco", "voc07", "voc"],
        default="coco",
        help="COCO AP, or VOC AP at IoU 0.5 (voc07: 11-point, voc: all-point)",
    )
    analysis.add_argument(
        "--score-threshold",
        type=float,
        default=0.5,
        help="confusion matrix and worst images: detections with at least this score",
    )
    analysis.add_argument(
        "--worst", type=int, default=10, help="images with the most errors to list and draw"
    )
    analysis.add_argument(
        "--images", help="the ground truth's images folder, to draw (default with --config: data.val_images)"
    )
    analysis.add_argument(
        "--show-dir", help="draw ground truth and detections on every image into this folder"
    )
    add_device_argument(model)
    parser.add_argument("overrides", nargs="*", help="with --config: config overrides, section.key=value")
    cli.add_debug_argument(parser)
    return parser


def _analysis(args: argparse.Namespace) -> dict[str, Any]:
    out = {
        "metric": args.metric,
        "score_threshold": args.score_threshold,
        "worst_n": args.worst,
        "show_dir": args.show_dir,
    }
    if args.images:
        out["images_dir"] = args.images
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.proposals:
        if args.results or args.checkpoint:
            parser.error("--proposals scores proposals: give it without --results and --checkpoint")
        if bool(args.gt) == bool(args.config):
            parser.error("--proposals needs the ground truth: --gt ANN.json or --config (its val split)")

        def run() -> None:
            gt = args.gt or load_config(args.config, DetectionConfig, args.overrides).data.val_annotations
            evaluate_proposals(gt, args.proposals, args.output)

        return cli.run_tool(run, user_errors=(ValueError,))
    if args.config or args.checkpoint:
        if not (args.config and args.checkpoint):
            parser.error("--config and --checkpoint go together")

        def run() -> None:
            evaluate_checkpoint(
                args.config, args.checkpoint, args.output, args.overrides, args.device, **_analysis(args)
            )

    else:
        if args.overrides or args.device:
            parser.error("config overrides and --device need --config and --checkpoint")
        missing = [flag for flag, value in (("--gt", args.gt), ("--results", args.results)) if not value]
        if missing:
            parser.error(f"{' and '.join(missing)} required: evaluate with --gt ANN.json --results DETS.json")

        def run() -> None:
            evaluate_files(args.gt, args.results, args.output, **_analysis(args))

    # the evaluator's checks of detections and results files raise ValueError naming the file and entry
    return cli.run_tool(run, user_errors=(ValueError,), debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
