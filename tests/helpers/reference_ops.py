"""Slow, literal reference implementations of the detection ops, for tests only.

Each function follows its definition step by step with Python loops (the compiled kernels and the vectorised
code are checked against these). Box coordinates are read as Python floats (float64 arithmetic).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def iou_pair(a: list[float], b: list[float]) -> float:
    """IoU of two x1y1x2y2 boxes, as the NMS kernels compute it; 0 when the union is empty."""
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _descending_order(scores: list[float]) -> list[int]:
    """Indices by decreasing score, lower index first on ties."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


def nms_reference(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS: visit boxes by decreasing score; keep one unless a kept box overlaps it by IoU > thr."""
    box_list, score_list = boxes.tolist(), scores.tolist()
    keep: list[int] = []
    for i in _descending_order(score_list):
        if all(iou_pair(box_list[i], box_list[k]) <= iou_threshold for k in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.int64)


def batched_nms_reference(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware greedy NMS: only a kept box of the same class can suppress a box."""
    box_list, score_list, cls = boxes.tolist(), scores.tolist(), idxs.tolist()
    keep: list[int] = []
    for i in _descending_order(score_list):
        if all(cls[k] != cls[i] or iou_pair(box_list[i], box_list[k]) <= iou_threshold for k in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.int64)


def soft_nms_reference(
    boxes: Tensor,
    scores: Tensor,
    method: str = "linear",
    sigma: float = 0.5,
    iou_threshold: float = 0.3,
    score_threshold: float = 0.001,
    idxs: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Soft-NMS as in Bodla et al. (2017), one pair at a time. With ``idxs``, only boxes of the same class
    rescore each other. Returns (keep indices, their new scores as float64)."""
    box_list, cur = boxes.tolist(), [float(s) for s in scores.tolist()]
    cls = idxs.tolist() if idxs is not None else [0] * len(box_list)
    alive = [s >= score_threshold for s in cur]
    keep: list[int] = []
    new_scores: list[float] = []
    while any(alive):
        best = max((i for i in range(len(cur)) if alive[i]), key=lambda i: (cur[i], -i))
        keep.append(best)
        new_scores.append(cur[best])
        alive[best] = False
        for j in range(len(cur)):
            if not alive[j] or cls[j] != cls[best]:
                continue
            iou = iou_pair(box_list[best], box_list[j])
            if method == "linear":
                weight = 1.0 - iou if iou > iou_threshold else 1.0
            elif method == "gaussian":
                weight = math.exp(-(iou * iou) / sigma)
            else:
                raise ValueError(f"unknown method {method!r}")
            cur[j] *= weight
            if cur[j] < score_threshold:
                alive[j] = False
    return torch.tensor(keep, dtype=torch.int64), torch.tensor(new_scores, dtype=torch.float64)


def _rois_list(boxes: Tensor | list[Tensor]) -> list[list[float]]:
    """(K, 5) [batch_index, x1, y1, x2, y2] or a list of (K_i, 4) -> list of [b, x1, y1, x2, y2]."""
    if isinstance(boxes, Tensor):
        return boxes.tolist()
    return [[float(n), *box] for n, b in enumerate(boxes) for box in b.tolist()]


def _round_half_away(x: float) -> int:
    """C's round(): halves go away from zero (Python's round() goes to even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def roi_pool_reference(
    input: Tensor, boxes: Tensor | list[Tensor], output_size: tuple[int, int], spatial_scale: float
) -> Tensor:
    """Caffe/Fast R-CNN RoI max pooling.

    The scaled RoI corners are rounded to cells; the RoI spans ``end - start + 1`` cells (at least 1);
    bin (ph, pw) covers rows ``[floor(ph * bin_h), ceil((ph + 1) * bin_h))`` (+ the RoI start, clipped to
    the map), columns alike; output = max over the bin, 0 for an empty bin. Differentiable (via max).
    """
    out_h, out_w = output_size
    _, _, height, width = input.shape
    outputs = []
    for roi in _rois_list(boxes):
        n = int(roi[0])
        start_w, start_h = _round_half_away(roi[1] * spatial_scale), _round_half_away(roi[2] * spatial_scale)
        end_w, end_h = _round_half_away(roi[3] * spatial_scale), _round_half_away(roi[4] * spatial_scale)
        roi_w, roi_h = max(end_w - start_w + 1, 1), max(end_h - start_h + 1, 1)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        rows = []
        for ph in range(out_h):
            cols = []
            for pw in range(out_w):
                hs = min(max(math.floor(ph * bin_h) + start_h, 0), height)
                he = min(max(math.ceil((ph + 1) * bin_h) + start_h, 0), height)
                ws = min(max(math.floor(pw * bin_w) + start_w, 0), width)
                we = min(max(math.ceil((pw + 1) * bin_w) + start_w, 0), width)
                if he <= hs or we <= ws:
                    cols.append(input.new_zeros(input.shape[1]))
                else:
                    cols.append(input[n, :, hs:he, ws:we].flatten(1).max(dim=1).values)
            rows.append(torch.stack(cols, dim=-1))
        outputs.append(torch.stack(rows, dim=-2))
    if not outputs:
        return input.new_zeros((0, input.shape[1], out_h, out_w))
    return torch.stack(outputs)


def _bilinear(feature: Tensor, y: float, x: float) -> Tensor:
    """feature: (C, H, W) -> (C,) bilinear value at (y, x), with torchvision's border rules: 0 beyond one
    cell outside the map, coordinates in [-1, 0] clamped to 0, the last row/column extended."""
    _, height, width = feature.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return feature.new_zeros(feature.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (
        hy * hx * feature[:, y_low, x_low]
        + hy * lx * feature[:, y_low, x_high]
        + ly * hx * feature[:, y_high, x_low]
        + ly * lx * feature[:, y_high, x_high]
    )


def roi_align_reference(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """RoIAlign (He et al. 2017) with torchvision's conventions.

    RoI corners scaled (minus 0.5 cell when ``aligned``); when not aligned the RoI is at least 1x1 cell.
    Each bin averages ``grid_h x grid_w`` bilinear samples at the centres of a regular sub-grid
    (``sampling_ratio``, or ``ceil(roi_size / output_size)`` when <= 0); no samples gives 0.
    """
    out_h, out_w = output_size
    offset = 0.5 if aligned else 0.0
    outputs = []
    for roi in _rois_list(boxes):
        feature = input[int(roi[0])]
        start_w, start_h = roi[1] * spatial_scale - offset, roi[2] * spatial_scale - offset
        roi_w = roi[3] * spatial_scale - offset - start_w
        roi_h = roi[4] * spatial_scale - offset - start_h
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
        rows = []
        for ph in range(out_h):
            cols = []
            for pw in range(out_w):
                total = input.new_zeros(input.shape[1])
                for iy in range(grid_h):
                    y = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        total = total + _bilinear(feature, y, x)
                count = max(grid_h, 0) * max(grid_w, 0)
                cols.append(total / count if count > 0 else total)
            rows.append(torch.stack(cols, dim=-1))
        outputs.append(torch.stack(rows, dim=-2))
    if not outputs:
        return input.new_zeros((0, input.shape[1], out_h, out_w))
    return torch.stack(outputs)
