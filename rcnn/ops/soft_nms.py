"""Soft-NMS (Bodla et al., "Soft-NMS -- Improving Object Detection With One Line of Code", ICCV 2017).

Instead of deleting the boxes that overlap a selected box, Soft-NMS lowers their scores:

- ``linear``: ``s_j <- s_j * (1 - iou)`` when ``iou > iou_threshold``, unchanged otherwise;
- ``gaussian``: ``s_j <- s_j * exp(-iou**2 / sigma)`` (``iou_threshold`` is not used).

Boxes whose score falls below ``score_threshold`` (or starts below it) are discarded. Each step selects the
highest remaining score (lowest index on ties) and rescores all remaining boxes at once (vectorised); the
number of Python steps is the number of kept boxes.
"""

from __future__ import annotations

import torch
from torch import Tensor

METHODS = ("linear", "gaussian")


def _iou_one_to_many(box: Tensor, boxes: Tensor) -> Tensor:
    """box: (4,), boxes: (M, 4) x1y1x2y2 -> (M,) IoU (0 where the union is empty)."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    w = (torch.min(box[2], boxes[:, 2]) - torch.max(box[0], boxes[:, 0])).clamp(min=0)
    h = (torch.min(box[3], boxes[:, 3]) - torch.max(box[1], boxes[:, 1])).clamp(min=0)
    inter = w * h
    union = area + areas - inter
    return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)), 0.0)


def _check_args(boxes: Tensor, scores: Tensor, method: str, sigma: float) -> None:
    if method not in METHODS:
        raise ValueError(f"soft_nms: method must be one of {METHODS}, got {method!r}")
    if method == "gaussian" and not sigma > 0:
        raise ValueError(f"soft_nms: sigma must be > 0 for the gaussian method, got {sigma}")
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"soft_nms: boxes must be (N, 4), got {tuple(boxes.shape)}")
    if scores.shape != boxes.shape[:1]:
        raise ValueError(f"soft_nms: scores must be ({boxes.shape[0]},), got {tuple(scores.shape)}")


def _soft_nms(
    boxes: Tensor,
    scores: Tensor,
    idxs: Tensor | None,
    method: str,
    sigma: float,
    iou_threshold: float,
    score_threshold: float,
) -> tuple[Tensor, Tensor]:
    _check_args(boxes, scores, method, sigma)
    if idxs is not None and idxs.shape != boxes.shape[:1]:
        raise ValueError(f"batched_soft_nms: idxs must be ({boxes.shape[0]},), got {tuple(idxs.shape)}")
    device = boxes.device
    dtype = torch.float64 if boxes.dtype == torch.float64 else torch.float32
    boxes_c = boxes.to(dtype)
    cur_scores = scores.to(dtype)

    # The remaining boxes, in increasing index order (so that argmax picks the lowest index on ties).
    remaining = torch.nonzero(cur_scores >= score_threshold).flatten()
    cur_scores = cur_scores[remaining]
    keep: list[Tensor] = []
    kept_scores: list[Tensor] = []
    while remaining.numel() > 0:
        best = int(torch.argmax(cur_scores))
        keep.append(remaining[best])
        kept_scores.append(cur_scores[best])
        others = torch.ones_like(remaining, dtype=torch.bool)
        others[best] = False
        remaining, cur_scores = remaining[others], cur_scores[others]
        if remaining.numel() == 0:
            break
        iou = _iou_one_to_many(boxes_c[keep[-1]], boxes_c[remaining])
        if idxs is not None:
            iou = torch.where(idxs[remaining] == idxs[keep[-1]], iou, 0.0)
        if method == "linear":
            weight = torch.where(iou > iou_threshold, 1.0 - iou, 1.0)
        else:
            weight = torch.exp(-(iou * iou) / sigma)
        cur_scores = cur_scores * weight
        alive = cur_scores >= score_threshold
        remaining, cur_scores = remaining[alive], cur_scores[alive]

    if not keep:
        return torch.empty((0,), dtype=torch.int64, device=device), scores.new_empty((0,))
    return torch.stack(keep).to(torch.int64), torch.stack(kept_scores).to(scores.dtype)


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    method: str = "linear",
    sigma: float = 0.5,
    iou_threshold: float = 0.3,
    score_threshold: float = 0.001,
) -> tuple[Tensor, Tensor]:
    """Soft-NMS of one set of boxes.

    boxes: (N, 4) float x1y1x2y2; scores: (N,) float. Returns ``(keep, new_scores)``: (K,) int64 indices
    into ``boxes`` in selection order (decreasing new score) and (K,) their rescored values (dtype of
    ``scores``). ``method`` is ``"linear"`` (uses ``iou_threshold``) or ``"gaussian"`` (uses ``sigma``).
    Computed in float32 (float64 inputs in float64).
    """
    return _soft_nms(boxes, scores, None, method, sigma, iou_threshold, score_threshold)


def batched_soft_nms(
    boxes: Tensor,
    scores: Tensor,
    idxs: Tensor,
    method: str = "linear",
    sigma: float = 0.5,
    iou_threshold: float = 0.3,
    score_threshold: float = 0.001,
) -> tuple[Tensor, Tensor]:
    """Class-aware Soft-NMS: boxes with different ``idxs`` (N,) never rescore each other.

    Same arguments and result as :func:`soft_nms`; the classes are handled in one pass (the IoU between
    boxes of different classes counts as 0), so ``keep`` is in decreasing new score over all classes.
    """
    return _soft_nms(boxes, scores, idxs, method, sigma, iou_threshold, score_threshold)
