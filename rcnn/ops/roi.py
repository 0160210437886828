"""RoI pooling and RoIAlign on torchvision's compiled kernels (CPU and CUDA), as functions and modules.

Shapes: ``input (N, C, H, W)``; ``boxes`` either a ``(K, 5)`` tensor ``[batch_index, x1, y1, x2, y2]`` or a
list of N ``(K_i, 4)`` tensors; output ``(K, C, out_h, out_w)``. ``spatial_scale`` maps image pixels to
feature cells (1 / stride).
"""

from __future__ import annotations

import torchvision
from torch import Tensor, nn

BoxesArg = Tensor | list[Tensor]


def _size(output_size: int | tuple[int, int]) -> tuple[int, int]:
    return (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)


def roi_pool(
    input: Tensor, boxes: BoxesArg, output_size: int | tuple[int, int], spatial_scale: float = 1.0
) -> Tensor:
    """Max-pool each RoI into ``output_size`` bins (Fast R-CNN's RoI pooling, Caffe rounding)."""
    return torchvision.ops.roi_pool(input, boxes, _size(output_size), spatial_scale)


def roi_align(
    input: Tensor,
    boxes: BoxesArg,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Average bilinear samples in each of ``output_size`` bins (Mask R-CNN's RoIAlign)."""
    return torchvision.ops.roi_align(input, boxes, _size(output_size), spatial_scale, sampling_ratio, aligned)


class RoIPool(nn.Module):
    """Module form of :func:`roi_pool`."""

    def __init__(self, output_size: int | tuple[int, int], spatial_scale: float):
        super().__init__()
        self.output_size, self.spatial_scale = _size(output_size), spatial_scale

    def forward(self, input: Tensor, boxes: BoxesArg) -> Tensor:
        return roi_pool(input, boxes, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"


class RoIAlign(nn.Module):
    """Module form of :func:`roi_align`."""

    def __init__(
        self,
        output_size: int | tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int = -1,
        aligned: bool = False,
    ):
        super().__init__()
        self.output_size, self.spatial_scale = _size(output_size), spatial_scale
        self.sampling_ratio, self.aligned = sampling_ratio, aligned

    def forward(self, input: Tensor, boxes: BoxesArg) -> Tensor:
        return roi_align(input, boxes, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
