"""Proposal quality of a whole split, for any proposals (selective search's cache, an RPN's dump, an
``.npz``): recall at IoU 0.5 / 0.7, average recall (AR, Hosang et al. 2016: recall averaged over IoU
0.5:0.05:0.95) and MABO, for the ``n`` best-ranked proposals of each image and for all of them, plus the
two curves the Faster R-CNN paper draws (Fig. 4 / 5): recall against the IoU threshold, and recall against
the number of proposals per image.

Shape shorthand: P_i proposals of image i ranked best first, G_i its ground-truth boxes; boxes x1y1x2y2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .recall import AR_IOUS, average_recall, best_overlaps_at, mabo_of_best, recall_curve, recall_of_best

COUNTS = (100, 300, 1000)  # AR@100, AR@300, AR@1000 as in the papers
CURVE_IOUS = tuple(round(0.5 + 0.05 * k, 2) for k in range(11))  # 0.5 .. 1.0: recall against IoU
CURVE_COUNTS = (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000, 2000, 5000)  # recall against proposals


def _number(value: float) -> float | None:
    """JSON has no NaN: None instead."""
    return None if math.isnan(value) else float(value)


def _scores(best: np.ndarray, classes: np.ndarray) -> dict[str, float | None]:
    return {
        "recall@0.5": _number(recall_of_best(best, 0.5)),
        "recall@0.7": _number(recall_of_best(best, 0.7)),
        "AR": _number(average_recall(best)),
        "mabo": _number(mabo_of_best(best, classes if best.size else None)),
    }


def proposal_quality(
    proposals: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    counts: Sequence[int] = COUNTS,
) -> dict[str, Any]:
    """Score per-image proposals (P_i, 4) against ground truth (G_i, 4) with classes (G_i,).

    Returns ``{"num_images", "num_gt_boxes", "boxes_per_image_mean", "all": scores, "top_n": {"100":
    scores, ...}, "recall_vs_iou": {"iou": [...], "100": [...], ..., "all": [...]}, "recall_vs_proposals":
    {"proposals": [...], "recall@0.5": [...], "recall@0.7": [...], "AR": [...]}}`` where scores are
    ``{"recall@0.5", "recall@0.7", "AR", "mabo"}`` (None without ground truth). MABO is the mean over
    classes of the mean best overlap; recall counts ground-truth boxes of all images pooled.
    """
    if not len(proposals) == len(gts) == len(labels):
        raise ValueError(
            f"{len(proposals)} proposal sets, {len(gts)} ground-truth sets, {len(labels)} label sets"
        )
    sizes = [len(np.asarray(p).reshape(-1, 4)) for p in proposals]
    most = max(sizes, default=0)
    grid = [n for n in CURVE_COUNTS if n < most] + [max(most, 1)]
    columns = sorted({*counts, *grid})
    per_image = [best_overlaps_at(p, g, columns) for p, g in zip(proposals, gts)]
    best = np.concatenate(per_image) if per_image else np.zeros((0, len(columns)))  # (G, columns)
    classes = np.concatenate([np.asarray(c).reshape(-1) for c in labels]) if labels else np.zeros(0, np.int64)
    if classes.size != best.shape[0]:
        raise ValueError(f"{classes.size} labels for {best.shape[0]} ground-truth boxes")
    at = {n: best[:, j] for j, n in enumerate(columns)}
    every = at[max(most, 1)]
    curves: dict[str, Any] = {"iou": list(CURVE_IOUS)}
    for name, b in [*((str(n), at[n]) for n in counts), ("all", every)]:
        curves[name] = [_number(v) for v in recall_curve(b, CURVE_IOUS)]
    return {
        "num_images": len(sizes),
        "num_gt_boxes": int(best.shape[0]),
        "boxes_per_image_mean": float(np.mean(sizes)) if sizes else 0.0,
        "boxes_per_image_max": most,
        "ar_ious": list(AR_IOUS),
        "all": _scores(every, classes),
        "top_n": {str(n): _scores(at[n], classes) for n in counts},
        "recall_vs_iou": curves,
        "recall_vs_proposals": {
            "proposals": grid,
            "recall@0.5": [_number(recall_of_best(at[n], 0.5)) for n in grid],
            "recall@0.7": [_number(recall_of_best(at[n], 0.7)) for n in grid],
            "AR": [_number(average_recall(at[n])) for n in grid],
        },
    }


def format_quality(name: str, quality: dict[str, Any]) -> str:
    """The table of :func:`proposal_quality` as text: one row per number of proposals, then all."""

    def pct(v: float | None) -> str:
        return "  n/a" if v is None else f"{100 * v:5.1f}"

    lines = [
        f"{name}: {quality['num_images']} images, {quality['num_gt_boxes']} ground-truth boxes, "
        f"{quality['boxes_per_image_mean']:.1f} proposals per image (max {quality['boxes_per_image_max']})",
        "  proposals  recall@0.5  recall@0.7     AR   MABO",
    ]
    for row, s in [*quality["top_n"].items(), ("all", quality["all"])]:
        lines.append(
            f"  {row:>9}      {pct(s['recall@0.5'])}%      {pct(s['recall@0.7'])}%  {pct(s['AR'])}% "
            f"{pct(s['mabo'])}%"
        )
    return "\n".join(lines)
