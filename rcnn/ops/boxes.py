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


def box_area(boxes: Tensor) -> Tensor:
    """(N, 4) -> (N,) areas (0 for degenerate boxes)."""
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """(N, 4), (M, 4) -> (N, M) intersection over union (0 where the union is empty)."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    union = area1[:, None] + area2[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=torch.finfo(inter.dtype).tiny), 0.0)


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


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression, as ``torchvision.ops.nms``.

    boxes: (N, 4) float; scores: (N,) float. Returns (K,) int64 indices of the kept boxes in decreasing
    score order. A box is dropped when its IoU with a kept, higher-scored box is > ``iou_threshold``.
    """
    return torchvision.ops.nms(boxes, scores, iou_threshold)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware NMS, as ``torchvision.ops.batched_nms``: boxes with different ``idxs`` (N,) never
    suppress each other. Uses the coordinate-offset trick, computed in float32 whatever the input dtype so
    that offsets never lose precision (e.g. under bf16 autocast)."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    boxes32 = boxes.float()
    max_coordinate = boxes32.max()
    offsets = idxs.to(boxes32) * (max_coordinate + 1)
    return torchvision.ops.nms(boxes32 + offsets[:, None], scores.float(), iou_threshold)
