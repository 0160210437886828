"""Everything ``tools/evaluate.py`` writes beside ``metrics.json``: the metric (COCO or VOC), per-class
precision-recall curves, the confusion matrix, the worst images and, optionally, every image drawn.

Files in ``out_dir``: ``pr_curves.png``, ``confusion_matrix.png`` / ``.json``, ``worst.json`` and, with
``images_dir``, ``worst/<image>.png``; with ``show_dir``, ``<show_dir>/<image>.png`` for every image
(ground truth green, detections red).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pycocotools.coco import COCO

from rcnn.data.coco import read_image
from rcnn.utils.io import atomic_write_json
from rcnn.visualization import draw_ground_truth_and_detections, write_image
from rcnn.visualization.evaluation_plots import plot_confusion_matrix, plot_precision_recall

from .analysis import confusion_matrix, image_errors, precision_recall_curves
from .coco import coco_metrics, run_cocoeval
from .voc import evaluate_voc

Metric = Literal["coco", "voc07", "voc"]


def _draw(coco_gt: COCO, results: list[dict[str, Any]], image_id: int, images_dir: str, path: str,
          score_threshold: float) -> None:  # fmt: skip
    cats = sorted(coco_gt.cats)
    label = {c: k + 1 for k, c in enumerate(cats)}
    names = [str(coco_gt.cats[c].get("name", c)) for c in cats]
    info = coco_gt.imgs[image_id]
    image = read_image(os.path.join(images_dir, info["file_name"]), image_id)
    anns = [a for a in coco_gt.imgToAnns.get(image_id, []) if not a.get("iscrowd", 0)]
    dets = [r for r in results if r["image_id"] == image_id and r["score"] >= score_threshold]
    xyxy = lambda b: [b[0], b[1], b[0] + b[2], b[1] + b[3]]  # noqa: E731
    drawn = draw_ground_truth_and_detections(
        image,
        [xyxy(a["bbox"]) for a in anns],
        [label[a["category_id"]] for a in anns],
        [xyxy(r["bbox"]) for r in dets],
        [label[r["category_id"]] for r in dets],
        [r["score"] for r in dets],
        names,
    )
    write_image(path, drawn)


def _png_name(coco_gt: COCO, image_id: int) -> str:
    return os.path.splitext(os.path.basename(coco_gt.imgs[image_id]["file_name"]))[0] + ".png"


def write_evaluation_report(
    coco_gt: COCO,
    results: list[dict[str, Any]],
    out_dir: str | os.PathLike,
    *,
    metric: Metric = "coco",
    score_threshold: float = 0.5,
    worst_n: int = 10,
    images_dir: str | None = None,
    show_dir: str | None = None,
) -> dict[str, Any]:
    """Evaluate ``results`` (checked COCO result dicts) against ``coco_gt`` and write the analysis files to
    ``out_dir`` (see the module docstring). Returns the metrics: COCO's (``metric="coco"``) or
    :func:`rcnn.evaluation.voc.evaluate_voc`'s, with ``"metric"`` naming which."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    coco_eval = run_cocoeval(coco_gt, results, None)
    if metric == "coco":
        metrics = {**coco_metrics(coco_eval), "metric": "coco"}
    else:
        metrics = evaluate_voc(coco_gt.dataset, results, metric)
    plot_precision_recall(precision_recall_curves(coco_eval), os.path.join(out_dir, "pr_curves.png"))
    matrix = confusion_matrix(coco_gt.dataset, results, score_threshold=score_threshold)
    atomic_write_json(matrix, os.path.join(out_dir, "confusion_matrix.json"))
    plot_confusion_matrix(matrix, os.path.join(out_dir, "confusion_matrix.png"))
    worst = [
        r for r in image_errors(coco_gt.dataset, results, score_threshold=score_threshold) if r["errors"]
    ]
    worst = worst[:worst_n]
    atomic_write_json(worst, os.path.join(out_dir, "worst.json"))
    if images_dir:
        for row in worst:
            path = os.path.join(out_dir, "worst", _png_name(coco_gt, row["image_id"]))
            _draw(coco_gt, results, row["image_id"], images_dir, path, score_threshold)
        if show_dir:
            for image_id in sorted(coco_gt.imgs):
                path = os.path.join(show_dir, _png_name(coco_gt, image_id))
                _draw(coco_gt, results, image_id, images_dir, path, score_threshold)
    return metrics
