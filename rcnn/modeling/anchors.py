"""Anchors: reference boxes tiled over a feature map, as in Faster R-CNN (Ren et al., 2015).

Shape shorthand:
    A: anchors per position (len(sizes) * len(aspect_ratios))
    H, W: feature map height and width; the anchor of position (y, x) and cell anchor a is row
    ``(y * W + x) * A + a`` of the output, the order in which the RPN head's outputs are flattened.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


def cell_anchors(sizes: Sequence[float], aspect_ratios: Sequence[float], rounded: bool = False) -> Tensor:
    """(A, 4) xyxy anchors centred on (0, 0), size-major: for each size, one anchor per aspect ratio.

    An anchor of size ``s`` and ratio ``r = h / w`` has area ``s ** 2``:
    ``w = s / sqrt(r)``, ``h = s * sqrt(r)``. ``rounded``: corners rounded to whole pixels, as
    torchvision's ``AnchorGenerator`` does (its checkpoints were trained with those anchors).
    """
    anchors = []
    for size in sizes:
        for ratio in aspect_ratios:
            w = size / math.sqrt(ratio)
            h = size * math.sqrt(ratio)
            anchors.append([-w / 2, -h / 2, w / 2, h / 2])
    out = torch.tensor(anchors, dtype=torch.float32)
    if rounded:  # torchvision computes in float32 and rounds half to even
        ratios = torch.as_tensor(aspect_ratios, dtype=torch.float32)
        scales = torch.as_tensor(sizes, dtype=torch.float32)
        h_ratios = torch.sqrt(ratios)
        ws = (scales[:, None] / h_ratios[None, :]).reshape(-1)  # size-major
        hs = (scales[:, None] * h_ratios[None, :]).reshape(-1)
        out = (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()
    return out


class AnchorGenerator(nn.Module):
    """Tiles ``len(sizes) * len(aspect_ratios)`` anchors over every position of a feature map.

    sizes: anchor sides in input pixels (area ``size ** 2``); aspect_ratios: ``h / w``; stride: input pixels
    per feature cell. ``offset`` places the anchor centres at ``(x + offset) * stride``: 0.5 (default) is the
    centre of the cell, which is where the receptive field of a padded conv net is centred; torchvision
    uses 0 and ``rounded`` cell anchors (:func:`cell_anchors`).

    ``forward(feature (N, C, H, W)) -> (H * W * A, 4)`` xyxy, cached per feature size and device.
    """

    def __init__(
        self,
        sizes: Sequence[float],
        aspect_ratios: Sequence[float],
        stride: int,
        offset: float = 0.5,
        rounded: bool = False,
    ):
        super().__init__()
        if not sizes or not aspect_ratios:
            raise ValueError(f"need at least one size and one aspect ratio, got {sizes}, {aspect_ratios}")
        self.sizes = tuple(float(s) for s in sizes)
        self.aspect_ratios = tuple(float(r) for r in aspect_ratios)
        self.stride = int(stride)
        self.offset = float(offset)
        self.rounded = bool(rounded)
        cells = cell_anchors(self.sizes, self.aspect_ratios, self.rounded)
        self.register_buffer("cell_anchors", cells, persistent=False)
        self._cache: dict[tuple[int, int, torch.device], Tensor] = {}

    @property
    def num_anchors_per_location(self) -> int:
        return self.cell_anchors.shape[0]

    def grid_anchors(self, height: int, width: int, device: torch.device) -> Tensor:
        """(height * width * A, 4) anchors of a ``height x width`` feature map."""
        shift_x = (torch.arange(width, dtype=torch.float32, device=device) + self.offset) * self.stride
        shift_y = (torch.arange(height, dtype=torch.float32, device=device) + self.offset) * self.stride
        sy, sx = torch.meshgrid(shift_y, shift_x, indexing="ij")  # (H, W)
        shifts = torch.stack([sx, sy, sx, sy], dim=-1).reshape(-1, 1, 4)  # (H*W, 1, 4)
        return (shifts + self.cell_anchors.to(device)[None]).reshape(-1, 4)  # (H*W*A, 4)

    def forward(self, feature: Tensor) -> Tensor:
        height, width = feature.shape[-2:]
        key = (int(height), int(width), feature.device)
        anchors = self._cache.get(key)
        if anchors is None:
            if len(self._cache) >= 16:  # many image sizes (multi-scale training): keep the cache small
                self._cache.clear()
            anchors = self._cache[key] = self.grid_anchors(key[0], key[1], feature.device)
        return anchors

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, aspect_ratios={self.aspect_ratios}, stride={self.stride}"


class PyramidAnchorGenerator(nn.Module):
    """One :class:`AnchorGenerator` per pyramid level: ``sizes[l]`` (FPN: one size per level) at
    ``strides[l]``, the same ``aspect_ratios``, ``offset`` and ``rounded`` everywhere.

    ``forward(features [(N, C, H_l, W_l), ...]) -> [(H_l * W_l * A, 4), ...]``, one tensor per level.
    """

    def __init__(
        self,
        sizes: Sequence[Sequence[float]],
        aspect_ratios: Sequence[float],
        strides: Sequence[int],
        offset: float = 0.5,
        rounded: bool = False,
    ):
        super().__init__()
        if len(sizes) != len(strides):
            raise ValueError(
                f"one group of anchor sizes per level: {len(sizes)} groups, {len(strides)} levels"
            )
        self.levels = nn.ModuleList(
            AnchorGenerator(s, aspect_ratios, stride, offset, rounded) for s, stride in zip(sizes, strides)
        )
        counts = {g.num_anchors_per_location for g in self.levels}
        if len(counts) != 1:
            raise ValueError(
                f"every level needs as many anchors per position (one shared head), got {counts}"
            )

    @property
    def num_anchors_per_location(self) -> int:
        return self.levels[0].num_anchors_per_location

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        return [generator(feature) for generator, feature in zip(self.levels, features)]
