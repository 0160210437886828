"""Proposal quality: recall at an IoU threshold and MABO (mean average best overlap, Uijlings et al. 4.1).

Boxes are ``(N, 4)`` ``x1, y1, x2, y2`` with exclusive ends (areas are ``(x2 - x1) * (y2 - y1)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """(N, 4), (M, 4) -> (N, M) float64 intersection over union (0 where the union is empty)."""
    a = np.asarray(boxes1, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes2, dtype=np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def best_overlaps(proposals: np.ndarray, gts: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """For each ground-truth box the highest IoU with any proposal: (P, 4), (G, 4) -> (G,) float64."""
    gts = np.asarray(gts, dtype=np.float64).reshape(-1, 4)
    proposals = np.asarray(proposals, dtype=np.float64).reshape(-1, 4)
    best = np.zeros(len(gts))
    for start in range(0, len(proposals), chunk):
        best = np.maximum(best, box_iou(gts, proposals[start : start + chunk]).max(axis=1, initial=0.0))
    return best


def _all_best(proposals: Sequence[np.ndarray], gts: Sequence[np.ndarray]) -> np.ndarray:
    if len(proposals) != len(gts):
        raise ValueError(f"{len(proposals)} proposal sets for {len(gts)} ground-truth sets")
    per_image = [best_overlaps(p, g) for p, g in zip(proposals, gts)]
    return np.concatenate(per_image) if per_image else np.zeros(0)


def recall_of_best(best: np.ndarray, iou: float = 0.5) -> float:
    """Recall from the best overlaps (G,) of every ground-truth box (:func:`best_overlaps`, all images
    concatenated): the fraction >= ``iou``. NaN when there is no ground truth."""
    best = np.asarray(best)
    return float((best >= iou).mean()) if best.size else float("nan")


def mabo_of_best(best: np.ndarray, classes: np.ndarray | None = None) -> float:
    """MABO from the best overlaps (G,) of every ground-truth box and, optionally, their classes (G,):
    the mean per class, then over classes (without classes: over all boxes). NaN without ground truth."""
    best = np.asarray(best)
    if not best.size:
        return float("nan")
    if classes is None:
        return float(best.mean())
    classes = np.asarray(classes).reshape(-1)
    if classes.shape != best.shape:
        raise ValueError(f"{classes.size} labels for {best.size} ground-truth boxes")
    return float(np.mean([best[classes == c].mean() for c in np.unique(classes)]))


def proposal_recall(proposals: Sequence[np.ndarray], gts: Sequence[np.ndarray], iou: float = 0.5) -> float:
    """Fraction of ground-truth boxes (over all images) covered by some proposal with IoU >= ``iou``.

    proposals: per image (P_i, 4); gts: per image (G_i, 4). NaN when there is no ground truth.
    """
    return recall_of_best(_all_best(proposals, gts), iou)


def mabo(
    proposals: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    labels: Sequence[np.ndarray] | None = None,
) -> float:
    """Mean average best overlap: the mean over ground-truth boxes of their best IoU with a proposal.

    With ``labels`` (per image (G_i,) class ids) the mean is taken per class first and the classes are then
    averaged (the paper's definition); without, over all boxes. NaN when there is no ground truth.
    """
    best = _all_best(proposals, gts)
    if labels is None:
        return mabo_of_best(best)
    classes = np.concatenate([np.asarray(lab).reshape(-1) for lab in labels]) if len(labels) else np.zeros(0)
    return mabo_of_best(best, classes)


# --------------------------------------------------------------------- recall against IoU and proposals
AR_IOUS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))  # 0.5:0.05:0.95, as COCO's and Hosang's AR


def best_overlaps_at(proposals: np.ndarray, gts: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """For each ground-truth box its best IoU with the ``n`` best-ranked proposals, for each ``n`` of
    ``counts``: (P, 4), (G, 4) -> (G, len(counts)) float64 (a count above P uses all P)."""
    gts = np.asarray(gts, dtype=np.float64).reshape(-1, 4)
    proposals = np.asarray(proposals, dtype=np.float64).reshape(-1, 4)
    out = np.zeros((len(gts), len(counts)))
    if not len(gts) or not len(proposals):
        return out
    running = np.maximum.accumulate(box_iou(gts, proposals), axis=1)  # (G, P): best of the first p + 1
    for j, n in enumerate(counts):
        if n > 0:
            out[:, j] = running[:, min(int(n), proposals.shape[0]) - 1]
    return out


def recall_curve(best: np.ndarray, ious: Sequence[float]) -> np.ndarray:
    """Recall (:func:`recall_of_best`) at each threshold of ``ious`` -> (len(ious),); NaN without ground
    truth."""
    return np.asarray([recall_of_best(best, t) for t in ious], dtype=np.float64)


def average_recall(best: np.ndarray, ious: Sequence[float] = AR_IOUS) -> float:
    """Average recall (Hosang et al. 2016): recall averaged over IoU thresholds 0.5:0.05:0.95, which
    rewards proposals that fit tightly, not only at 0.5. NaN without ground truth."""
    return float(recall_curve(best, ious).mean()) if np.asarray(best).size else float("nan")
