"""RoI pooling and RoIAlign on torchvision's compiled kernels (CPU and CUDA), as functions and modules.

Shapes: ``input (N, C, H, W)``; ``boxes`` either a ``(K, 5)`` tensor ``[batch_index, x1, y1, x2, y2]`` or a
list of N ``(K_i, 4)`` tensors; output ``(K, C, out_h, out_w)``. ``spatial_scale`` maps image pixels to
feature cells (1 / stride).

fp16/bf16 features are pooled in float32 and the result cast back to the input's dtype (as torchvision's
autocast does; its CPU kernels have no bf16 version), and the boxes are cast to the dtype the kernel runs in,
so float32 boxes work with any features.
"""

from __future__ import annotations

import torch
import torchvision
from torch import Tensor, nn
from torchvision.ops._utils import convert_boxes_to_roi_format

BoxesArg = Tensor | list[Tensor]


def _size(output_size: int | tuple[int, int]) -> tuple[int, int]:
    return (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def _cast(input: Tensor, boxes: BoxesArg) -> tuple[Tensor, BoxesArg]:
    """Input and boxes in the dtype the compiled kernel runs in."""
    dtype = _compute_dtype(input.dtype)
    if isinstance(boxes, Tensor):
        return input.to(dtype), boxes.to(dtype)
    return input.to(dtype), [b.to(dtype) for b in boxes]


def roi_pool(
    input: Tensor, boxes: BoxesArg, output_size: int | tuple[int, int], spatial_scale: float = 1.0
) -> Tensor:
    """Max-pool each RoI into ``output_size`` bins (Fast R-CNN's RoI pooling, Caffe rounding).

    input: (N, C, H, W); boxes: (K, 5) ``[batch_index, x1, y1, x2, y2]`` or a list of N (K_i, 4) tensors,
    in image pixels. Returns (K, C, out_h, out_w). The RoI is scaled by ``spatial_scale`` and rounded to
    whole cells (at least 1x1); bins are cut with floor/ceil, clipped to the map; an empty bin gives 0.
    """
    x, rois = _cast(input, boxes)
    return torchvision.ops.roi_pool(x, rois, _size(output_size), spatial_scale).to(input.dtype)


def roi_align(
    input: Tensor,
    boxes: BoxesArg,
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """Average bilinear samples in each of ``output_size`` bins (Mask R-CNN's RoIAlign).

    input: (N, C, H, W); boxes: (K, 5) ``[batch_index, x1, y1, x2, y2]`` or a list of N (K_i, 4) tensors,
    in image pixels. Returns (K, C, out_h, out_w). ``sampling_ratio`` samples per bin side (<= 0: adaptive,
    ``ceil(roi_size / output_size)``). ``aligned=True`` shifts the box by -0.5 cell so that sample points
    sit on pixel centres; ``aligned=False`` (the original) also forces boxes to be at least 1x1 cell.
    """
    x, rois = _cast(input, boxes)
    out = torchvision.ops.roi_align(x, rois, _size(output_size), spatial_scale, sampling_ratio, aligned)
    return out.to(input.dtype)


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
    """Module form of :func:`roi_align`. On the CPU, with a fixed ``sampling_ratio > 0``, boxes given as a
    list per image and gradients flowing into the features, the backward pass is computed by matrix products
    (:func:`rcnn.ops.roi_align_separable.roi_align_separable`: same forward, gradients equal to float
    rounding, several times faster than the compiled kernel's scatter); ``separable_backward=False``
    keeps torchvision's. On the CPU without gradients to the features (inference), the forward pass is
    :func:`rcnn.ops.roi_align_nhwc.roi_align_nhwc` (torchvision's arithmetic, channels-last, threaded:
    equal to float rounding, 6-7x faster on the detectors' maps: ``roi_kernels`` in docs/benchmarks.md);
    ``cpu_kernel=False`` keeps torchvision's."""

    def __init__(
        self,
        output_size: int | tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int = -1,
        aligned: bool = False,
        separable_backward: bool = True,
        cpu_kernel: bool = True,
    ):
        super().__init__()
        self.output_size, self.spatial_scale = _size(output_size), spatial_scale
        self.sampling_ratio, self.aligned = sampling_ratio, aligned
        self.separable_backward = separable_backward
        self.cpu_kernel = cpu_kernel

    def forward(self, input: Tensor, boxes: BoxesArg) -> Tensor:
        if (
            self.separable_backward
            and isinstance(boxes, list)  # per-image boxes: the RoIs come grouped by image
            and self.sampling_ratio > 0
            and input.device.type == "cpu"
            and input.requires_grad
            and torch.is_grad_enabled()
        ):
            # optional: the numba kernels load on first CPU use (importing numba costs ~0.5 s at start-up)
            from .roi_align_separable import roi_align_separable

            return roi_align_separable(
                input, boxes, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
            )
        if (
            self.cpu_kernel
            and input.device.type == "cpu"
            and not (input.requires_grad and torch.is_grad_enabled())
        ):
            # optional: the numba kernel loads on first CPU use (importing numba costs ~0.5 s at start-up)
            from .roi_align_nhwc import roi_align_nhwc

            x, rois = _cast(input, boxes)
            if x.dtype == torch.float32:
                rois = convert_boxes_to_roi_format(rois) if isinstance(rois, list) else rois
                out = roi_align_nhwc(
                    x, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
                )
                return out.to(input.dtype)
        return roi_align(
            input, boxes, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned
        )

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
            f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}"
        )
