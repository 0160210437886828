"""Anchor fit: how well the configured anchors cover a dataset's ground-truth boxes.

For every ground-truth box, the best IoU over all anchors tiled on its image (as the RPN's matcher sees
them: ``fg_iou_thresh`` 0.7 makes a positive, below ``bg_iou_thresh`` 0.3 a negative). A box whose best
anchor has IoU < 0.5 is learned only through the matcher's low-quality matches, if at all.

Shape shorthand:
    N: ground-truth boxes, (N, 4) xyxy in the pixels the model receives (after the resize)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import box_iou

from .anchors import AnchorGenerator, PyramidAnchorGenerator

# object size bins: sqrt(area) in input pixels
SIZE_EDGES: tuple[float, ...] = (0.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, math.inf)
ADVICE_FRACTION = 0.1  # advise when more than this fraction of a size bin has no anchor of IoU >= 0.5


def best_anchor_iou(
    boxes: Tensor, image_size: tuple[int, int], generator: AnchorGenerator | PyramidAnchorGenerator
) -> Tensor:
    """(N,) the best IoU of each box (N, 4) with the anchors of an image of ``image_size`` (H, W).

    Each level's feature map is ``ceil(H / stride) x ceil(W / stride)`` cells, as a padded conv net makes
    it; a :class:`PyramidAnchorGenerator` (FPN) tiles every level at its own stride and the best anchor
    is taken over all of them. Every anchor counts, also those crossing the image border.
    """
    boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    if boxes.shape[0] == 0:
        return torch.zeros(0)
    h, w = image_size
    levels = generator.levels if isinstance(generator, PyramidAnchorGenerator) else [generator]
    anchors = torch.cat(
        [g.grid_anchors(math.ceil(h / g.stride), math.ceil(w / g.stride), "cpu") for g in levels]
    )
    return box_iou(boxes, anchors).max(dim=1).values


def _fractions(ious: np.ndarray) -> dict[str, Any]:
    n = int(ious.size)
    if n == 0:
        return {"boxes": 0, "iou>=0.7": None, "iou>=0.5": None, "iou<0.3": None}
    return {
        "boxes": n,
        "iou>=0.7": float((ious >= 0.7).mean()),
        "iou>=0.5": float((ious >= 0.5).mean()),
        "iou<0.3": float((ious < 0.3).mean()),
    }


def _bin_name(lo: float, hi: float) -> str:
    return f"{lo:g}+ px" if math.isinf(hi) else f"{lo:g}-{hi:g} px"


def anchor_fit_report(
    best_ious: Sequence[float] | np.ndarray,
    box_sizes: Sequence[float] | np.ndarray,
    box_aspect_ratios: Sequence[float] | np.ndarray,
    anchor_sizes: Sequence[float],
    aspect_ratios: Sequence[float],
    size_edges: Sequence[float] = SIZE_EDGES,
) -> dict[str, Any]:
    """The fractions of boxes whose best anchor has IoU >= 0.7, >= 0.5 and < 0.3, over all boxes and by
    object size, and a one-line advice.

    best_ious, box_sizes (sqrt area, input pixels), box_aspect_ratios (h / w): one value per box.
    Returns ``{"all": {...}, "by_size": [{"size": "16-32 px", "min", "max", "boxes", "iou>=0.7", ...}],
    "advice": str}``; a bin without boxes has ``None`` fractions.
    """
    ious = np.asarray(best_ious, dtype=np.float64).reshape(-1)
    sizes = np.asarray(box_sizes, dtype=np.float64).reshape(-1)
    ratios = np.asarray(box_aspect_ratios, dtype=np.float64).reshape(-1)
    by_size = []
    worst: tuple[float, int] | None = None
    for b, (lo, hi) in enumerate(zip(size_edges[:-1], size_edges[1:])):
        in_bin = (sizes >= lo) & (sizes < hi)
        row = {"size": _bin_name(lo, hi), "min": lo, "max": None if math.isinf(hi) else hi}
        row.update(_fractions(ious[in_bin]))
        by_size.append(row)
        if row["boxes"]:
            unfit = 1.0 - row["iou>=0.5"]
            if unfit > ADVICE_FRACTION and (worst is None or unfit > worst[0]):
                worst = (unfit, b)
    advice = "the anchors fit: in every size bin at least 90% of the boxes have an anchor of IoU >= 0.5"
    if worst is not None:
        lo, hi = size_edges[worst[1]], size_edges[worst[1] + 1]
        in_bin = (sizes >= lo) & (sizes < hi)
        unfit = in_bin & (ious < 0.5)
        where = f"boxes of {_bin_name(lo, hi)}" if not math.isinf(hi) else f"boxes over {lo:g} px"
        if lo == 0:
            where = f"boxes under {hi:g} px"
        size = float(np.median(sizes[unfit]))
        nearest = min(anchor_sizes, key=lambda s: abs(math.log(s / size)))
        if abs(math.log(nearest / size)) > math.log(math.sqrt(2)):
            fix = f"add anchor size {max(8, int(round(size / 8)) * 8)}"
        else:
            ratio = float(np.exp(np.median(np.log(ratios[unfit]))))
            fix = f"add aspect ratio {ratio:.2g} (h / w; configured {list(aspect_ratios)})"
        advice = f"{worst[0]:.0%} of {where} have no anchor of IoU >= 0.5; {fix}"
    return {"all": _fractions(ious), "by_size": by_size, "advice": advice}
