"""RoIAlign with a separable backward pass: torchvision's forward kernel, gradients by matrix products.

Shape shorthand:
    N, C, H, W: feature maps; R: RoIs; P_h, P_w: output bins; s: samples per bin side (``sampling_ratio``).

RoIAlign's output is linear in the features, and its weights factor by axis: bin ``(ph, pw)`` of RoI ``r``
averages ``s x s`` bilinear samples, each a product of a weight along y and one along x (a sample outside
``[-1, H] x [-1, W]`` counts zero, which factors too). So

    out[r, c] = A_y[r] @ features[b_r, c] @ A_x[r]^T            A_y: (R, P_h, H), A_x: (R, P_w, W)

and the gradient with respect to the features is ``grad[b] += A_y[r]^T @ grad_out[r, c] @ A_x[r]`` summed
over the RoIs of image ``b``: batched matrix products instead of torchvision's CPU kernel, which
recomputes the bilinear weights and scatters them one output element and channel at a time (a third of a
ResNet-18 C4 training step at 256x256). The sums run in another order, so the gradients agree with
torchvision's to float rounding. Only a fixed ``sampling_ratio > 0`` is handled (an adaptive one samples a
different grid per RoI). :class:`rcnn.ops.roi.RoIAlign` uses it on the CPU when gradients flow into the
features (the CUDA kernel's backward is fast already).
"""

from __future__ import annotations

import torch
import torchvision
from torch import Tensor
from torchvision.ops._utils import convert_boxes_to_roi_format

from .roi_align_nhwc import roi_align_nhwc

_CHUNK_ELEMENTS = 1 << 24  # bound on the intermediate (RoIs of a chunk) x C x max(P_h, H) x W


def axis_weights(start: Tensor, bin_size: Tensor, bins: int, samples: int, size: int) -> Tensor:
    """(R, bins, size): the average over the ``samples`` bilinear taps of each bin, along one axis, with
    torchvision's border rules (samples beyond ``[-1, size]`` count zero; coordinates clamp to the map).

    start, bin_size: (R,) in feature-map cells."""
    offsets = (torch.arange(samples, device=start.device, dtype=start.dtype) + 0.5) / samples  # (s,)
    index = torch.arange(bins, device=start.device, dtype=start.dtype)
    # the kernel's arithmetic: start + p * bin + (i + .5) * bin / s
    pos = start[:, None, None] + index[None, :, None] * bin_size[:, None, None]
    pos = pos + offsets[None, None, :] * bin_size[:, None, None]  # (R, bins, s)
    valid = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor().long()
    edge = low >= size - 1
    low = torch.where(edge, size - 1, low)
    high = torch.where(edge, size - 1, low + 1)
    pos = torch.where(edge, low.to(pos.dtype), pos)
    frac = pos - low.to(pos.dtype)
    zero = pos.new_zeros(())
    weights = pos.new_zeros((start.shape[0], bins, size))
    weights.scatter_add_(2, low, torch.where(valid, 1 - frac, zero) / samples)
    weights.scatter_add_(2, high, torch.where(valid, frac, zero) / samples)
    return weights


def roi_align_input_grad(
    grad_output: Tensor,
    rois: Tensor,
    input_shape: tuple[int, int, int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
    counts: list[int] | None = None,
) -> Tensor:
    """Gradient (N, C, H, W) of ``roi_align(input, rois, ...)`` with respect to ``input``, given
    ``grad_output`` (R, C, P_h, P_w) and ``rois`` (R, 5) ``[batch_index, x1, y1, x2, y2]`` sorted by
    image, ``counts[i]`` of them for image ``i`` (counted from ``rois`` when not given)."""
    n, c, height, width = input_shape
    num_rois, _, bins_h, bins_w = grad_output.shape
    grad_input = grad_output.new_zeros((n, height, c, width))  # filled per image row by row
    if num_rois == 0:
        return grad_input.permute(0, 2, 1, 3).contiguous()
    offset = 0.5 if aligned else 0.0
    boxes = rois[:, 1:].to(grad_output.dtype) * spatial_scale - offset  # (R, 4)
    roi_w, roi_h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    if not aligned:  # the original RoIAlign forces at least 1x1 cell
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    a_y = axis_weights(boxes[:, 1], roi_h / bins_h, bins_h, sampling_ratio, height)  # (R, P_h, H)
    a_x = axis_weights(boxes[:, 0], roi_w / bins_w, bins_w, sampling_ratio, width)  # (R, P_w, W)
    counts = torch.bincount(rois[:, 0].long(), minlength=n).tolist() if counts is None else counts
    chunk = max(1, _CHUNK_ELEMENTS // (c * max(bins_h, height) * width))
    start = 0
    for image, count in enumerate(counts):  # the RoIs of an image are consecutive
        for lo in range(start, start + count, chunk):
            hi = min(start + count, lo + chunk)
            g = grad_output[lo:hi].reshape(hi - lo, c * bins_h, bins_w)
            t = torch.bmm(g, a_x[lo:hi])  # (r, C * P_h, W)
            t = t.view(hi - lo, c, bins_h, width).transpose(1, 2).reshape((hi - lo) * bins_h, c * width)
            # one product sums over the chunk's RoIs and bins: (H, r * P_h) @ (r * P_h, C * W)
            grad_input[image].view(height, c * width).addmm_(a_y[lo:hi].reshape(-1, height).t(), t)
        start += count
    return grad_input.permute(0, 2, 1, 3).contiguous()  # (N, C, H, W)


class _RoIAlign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, rois, output_size, spatial_scale, sampling_ratio, aligned, counts):
        ctx.save_for_backward(rois)
        ctx.config = (tuple(input.shape), spatial_scale, sampling_ratio, aligned, counts)
        if input.dtype == torch.float32:  # the threaded channels-last forward (same values)
            return roi_align_nhwc(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
        return torchvision.ops.roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned)

    @staticmethod
    def backward(ctx, grad_output):
        (rois,) = ctx.saved_tensors
        shape, spatial_scale, sampling_ratio, aligned, counts = ctx.config
        with torch.autocast(grad_output.device.type, enabled=False):  # the products stay in float32
            grad = roi_align_input_grad(
                grad_output, rois, shape, spatial_scale, sampling_ratio, aligned, counts
            )
        return grad, None, None, None, None, None, None


def roi_align_separable(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """:func:`rcnn.ops.roi.roi_align` (same forward, same dtype handling) with the separable backward.

    input: (N, C, H, W); boxes: (R, 5) or N tensors (R_i, 4); returns (R, C, P_h, P_w)."""
    if sampling_ratio <= 0:
        raise ValueError(f"the separable backward needs a fixed sampling_ratio > 0, got {sampling_ratio}")
    dtype = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
    if isinstance(boxes, list):
        rois, counts = convert_boxes_to_roi_format(boxes), [len(b) for b in boxes]
    else:  # (R, 5): sorted by image for the backward pass
        order = boxes[:, 0].argsort(stable=True)
        if not torch.equal(order, torch.arange(len(order), device=order.device)):
            raise ValueError("rois (R, 5) must be sorted by batch index")
        rois, counts = boxes, None
    x = input.to(dtype)
    args = (tuple(output_size), spatial_scale, sampling_ratio, aligned, counts)
    out = _RoIAlign.apply(x, rois.to(dtype), *args)
    return out.to(input.dtype)
