"""RoIAlign over a feature pyramid: each RoI pooled from the level its size picks (Lin et al., 2017, eq. 1).

Shape shorthand:
    N: images; R: RoIs of the batch (``sum(P_i)``); L: pyramid levels pooled from; C: channels;
    S: pooled size.

Level of a ``w x h`` box: ``k = floor(k0 + log2(sqrt(w * h) / canonical_size) + 1e-6)``, clamped to the
levels present, with ``k0 = 4`` and ``canonical_size = 224`` (a 224-pixel box is pooled from P4; stride
``2 ** k``). These are torchvision's ``MultiScaleRoIAlign`` semantics (same formula, epsilon, clamping
and op), so a torchvision model's weights give its own pooled features; each level runs
:class:`rcnn.ops.roi.RoIAlign`, whose CPU kernels give the same values as torchvision's, faster.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from rcnn.ops.boxes import box_area
from rcnn.ops.roi import RoIAlign


def assign_fpn_levels(
    boxes: Tensor, min_level: int, max_level: int, canonical_level: int = 4, canonical_size: float = 224.0
) -> Tensor:
    """boxes: (R, 4) xyxy in input pixels. Returns (R,) int64 pyramid levels in ``min_level..max_level``."""
    sizes = torch.sqrt(box_area(boxes))
    levels = torch.floor(canonical_level + torch.log2(sizes / canonical_size) + 1e-6)
    return levels.clamp(min=min_level, max=max_level).to(torch.int64)


class MultiScaleRoIAlign(nn.Module):
    """``forward(features {name: (N, C, H_l, W_l)}, boxes N x (P_i, 4)) -> (R, C, S, S)``, in the order of
    the boxes.

    in_features: the names of the levels to pool from; strides: theirs (powers of 2, finest first);
    output_size, sampling_ratio, aligned: as :class:`rcnn.ops.roi.RoIAlign` (torchvision's FPN pools with
    ``sampling_ratio=2, aligned=False``).
    """

    def __init__(
        self,
        in_features: Sequence[str],
        strides: Sequence[int],
        output_size: int,
        *,
        sampling_ratio: int = 2,
        aligned: bool = False,
        canonical_level: int = 4,
        canonical_size: float = 224.0,
    ):
        super().__init__()
        if len(in_features) != len(strides) or not in_features:
            raise ValueError(f"one stride per level: {list(in_features)}, {list(strides)}")
        levels = [math.log2(s) for s in strides]
        if any(b - a != 1 for a, b in zip(levels, levels[1:])) or not levels[0].is_integer():
            raise ValueError(f"pyramid strides must be consecutive powers of 2, got {list(strides)}")
        self.in_features = list(in_features)
        self.min_level, self.max_level = int(levels[0]), int(levels[-1])
        self.output_size = (output_size, output_size)
        self.canonical_level, self.canonical_size = canonical_level, canonical_size
        self.poolers = nn.ModuleList(
            RoIAlign(output_size, 1.0 / s, sampling_ratio=sampling_ratio, aligned=aligned) for s in strides
        )

    def forward(self, features: dict[str, Tensor], boxes: list[Tensor]) -> Tensor:
        maps = [features[name] for name in self.in_features]
        all_boxes = torch.cat(boxes) if boxes else maps[0].new_zeros((0, 4))
        levels = (
            assign_fpn_levels(
                all_boxes, self.min_level, self.max_level, self.canonical_level, self.canonical_size
            )
            - self.min_level
        )  # (R,)
        image_of = torch.cat([torch.full((len(b),), i, device=all_boxes.device) for i, b in enumerate(boxes)])
        out = maps[0].new_zeros((len(all_boxes), maps[0].shape[1], *self.output_size))  # (R, C, S, S)
        for level, (feature, pooler) in enumerate(zip(maps, self.poolers)):
            index = torch.nonzero(levels == level).flatten()
            if index.numel() == 0:
                continue
            per_image = [
                all_boxes[index[image_of[index] == i]] for i in range(len(boxes))
            ]  # grouped by image
            pooled = pooler(feature, per_image)  # (R_l, C, S, S), image by image: the order of ``index``
            out[index] = pooled.to(out.dtype)
        return out

    def extra_repr(self) -> str:
        return f"levels={self.min_level}..{self.max_level}, output_size={self.output_size}"
