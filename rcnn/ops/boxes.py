"""Box utilities. Boxes are ``(N, 4)`` float, ``x1y1x2y2`` absolute pixels unless a name says otherwise.

NMS runs on torchvision's compiled kernels (CPU and CUDA); these are thin, documented wrappers.
"""

from __future__ import annotations

import torch
import torchvision
from torch import Tensor


def box_xyxy_to_xywh(boxes: Tensor) -> Tensor:
    """(N, 4) x1y1x2y2 -> (N, 4) x, y, w, h (COCO)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([x1, y1, x2 - x1, y2 - y1], dim=-1)


def box_xywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(N, 4) x, y, w, h (COCO) -> (N, 4) x1y1x2y2."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, y, x + w, y + h], dim=-1)


def box_xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """(N, 4) x1y1x2y2 -> (N, 4) centre x, centre y, w, h."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def box_cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """(N, 4) centre x, centre y, w, h -> (N, 4) x1y1x2y2."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def _upcast(t: Tensor) -> Tensor:
    """The dtype products of coordinates are computed in: float16 / bfloat16 -> float32 (a 900 x 665 box's
    area overflows float16), integers -> int64 (as ``torchvision.ops.boxes._upcast``, wider for int32)."""
    if t.is_floating_point():
        return t if t.dtype in (torch.float32, torch.float64) else t.float()
    return t if t.dtype == torch.int64 else t.long()


def box_area(boxes: Tensor) -> Tensor:
    """(N, 4) -> (N,) areas (0 for degenerate boxes): float32 for fp16 / bf16 boxes, int64 for integers."""
    boxes = _upcast(boxes)
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """(N, 4), (M, 4) -> (N, M) intersection over union (0 where the union is empty); computed in float32
    for fp16 / bf16 and integer boxes (float64 stays float64)."""
    dtype = torch.float64 if torch.float64 in (boxes1.dtype, boxes2.dtype) else torch.float32
    boxes1, boxes2 = _upcast(boxes1), _upcast(boxes2)
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = (wh[..., 0] * wh[..., 1]).to(dtype)  # (N, M); exact for integers, then float
    union = (area1[:, None] + area2[None, :]).to(dtype) - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(dtype).tiny), 0.0)


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clip (..., 4) boxes to an image of ``size = (height, width)``."""
    height, width = size
    x = boxes[..., 0::2].clamp(min=0, max=width)
    y = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices (K,) int64 of the boxes whose width and height are both >= ``min_size``."""
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.nonzero((ws >= min_size) & (hs >= min_size)).flatten()


def _nms_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype NMS computes in: float64 stays float64, everything else (fp16, bf16, float32) is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms``.

    boxes: (N, 4) float x1y1x2y2; scores: (N,) float. Returns (K,) int64 indices of the kept boxes in
    decreasing score order (equal scores: lower index first on CPU). A box is dropped when its IoU with a
    kept, higher-scored box is > ``iou_threshold``. fp16/bf16 inputs are computed in float32 (the compiled
    CPU kernel has no reduced-precision version).
    """
    dtype = _nms_dtype(boxes.dtype)
    return torchvision.ops.nms(boxes.to(dtype), scores.to(dtype), iou_threshold)


# Above this many boxes on the CPU (as torchvision decides), one NMS per class beats one NMS over the
# offset boxes: the kernel's pairwise loop no longer compares boxes of different classes.
PER_CLASS_NMS_MIN_BOXES = {"cpu": 1000}


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware NMS, as ``torchvision.ops.batched_nms``: boxes with different ``idxs`` (N,) never
    suppress each other.

    boxes: (N, 4) float x1y1x2y2; scores: (N,) float; idxs: (N,) int. Returns (K,) int64 indices in
    decreasing score order. Small inputs (and every input on CUDA) use the coordinate-offset trick (each
    class is moved to its own region of the plane, then one NMS runs), computed in float32 whatever the
    input dtype (float64 stays float64) so that the offsets never eat the coordinates' precision (e.g.
    under bf16 autocast). Unlike torchvision, the offsets are spaced by the boxes' full extent and by the
    rank of each class id, so negative coordinates and large, sparse class ids are handled too. More than
    ``PER_CLASS_NMS_MIN_BOXES`` boxes on the CPU run one NMS per class instead (same result, faster).
    """
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    if len(boxes) > PER_CLASS_NMS_MIN_BOXES.get(boxes.device.type, len(boxes)):
        return _batched_nms_per_class(boxes, scores, idxs, iou_threshold)
    dtype = _nms_dtype(boxes.dtype)
    boxes_wide = boxes.to(dtype)
    low, high = boxes_wide.min(), boxes_wide.max()
    _, rank = torch.unique(idxs, return_inverse=True)  # class ids -> 0..C-1
    offsets = rank.to(dtype) * (high - low + 1)
    shifted = boxes_wide - low + offsets[:, None]
    return torchvision.ops.nms(shifted, scores.to(dtype), iou_threshold)


def _batched_nms_per_class(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """:func:`batched_nms` as one :func:`nms` per class id; the kept indices sorted by decreasing score."""
    keep = torch.zeros(len(boxes), dtype=torch.bool, device=boxes.device)
    for class_id in torch.unique(idxs):
        members = torch.where(idxs == class_id)[0]
        keep[members[nms(boxes[members], scores[members], iou_threshold)]] = True
    kept = torch.where(keep)[0]
    return kept[scores[kept].float().argsort(descending=True, stable=True)]
