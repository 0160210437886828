"""RoIAlign forward on the CPU, channels-last: torchvision's arithmetic, vectorised over channels, threaded
over RoIs.

Shape shorthand:
    N, C, H, W: feature maps; R: RoIs; P_h, P_w: output bins.

torchvision's CPU kernel visits one RoI, bin, sample and channel at a time on one thread, reading the NCHW
map with a stride of H * W between channels. Here the map is read channels-last (NHWC: the C values of a
pixel are adjacent), so each bilinear sample is four weighted sums of contiguous C-vectors, which the
compiler vectorises, and the RoIs are split over threads (numba ``prange``; as many threads as torch
uses). The sample positions, border rules, weights and the order of the sums are torchvision's (the
float32 arithmetic of ``roi_align_forward_kernel_impl``), so results match it to float rounding (they
are usually bitwise equal). The output is ``(R, P_h, P_w, C)`` in memory, handed back as ``(R, C, P_h,
P_w)`` channels-last: what a channels-last region head takes without a copy.

Forward only: :class:`rcnn.ops.roi.RoIAlign` uses it for CPU inference (no gradient to the features), and
:func:`rcnn.ops.roi_align_separable.roi_align_separable` for the forward pass of its training path.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import njit, prange
from torch import Tensor


@njit(cache=True, parallel=True, nogil=True)
def _roi_align_nhwc(features, rois, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned, out):
    """features (N, H, W, C) float32; rois (R, 5) float32 ``[b, x1, y1, x2, y2]``; spatial_scale float32;
    out (R, P_h, P_w, C) float32, zeroed. Every step in float32, as torchvision's kernel for float."""
    f32 = np.float32
    height, width, channels = features.shape[1], features.shape[2], features.shape[3]
    one, zero = f32(1.0), f32(0.0)
    offset = f32(0.5) if aligned else zero
    fheight, fwidth = f32(height), f32(width)
    for r in prange(rois.shape[0]):
        b = int(rois[r, 0])
        start_w = rois[r, 1] * spatial_scale - offset
        start_h = rois[r, 2] * spatial_scale - offset
        roi_w = (rois[r, 3] * spatial_scale - offset) - start_w
        roi_h = (rois[r, 4] * spatial_scale - offset) - start_h
        if not aligned:  # the original RoIAlign forces at least 1x1 cell
            roi_w = max(roi_w, one)
            roi_h = max(roi_h, one)
        bin_h = roi_h / f32(pooled_h)
        bin_w = roi_w / f32(pooled_w)
        grid_h = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_h / f32(pooled_h)))
        grid_w = sampling_ratio if sampling_ratio > 0 else int(math.ceil(roi_w / f32(pooled_w)))
        count = f32(max(grid_h * grid_w, 1))
        fgrid_h, fgrid_w = f32(grid_h), f32(grid_w)
        for ph in range(pooled_h):
            for pw in range(pooled_w):
                acc = out[r, ph, pw]
                for iy in range(grid_h):
                    y = start_h + f32(ph) * bin_h + f32(iy + 0.5) * bin_h / fgrid_h
                    for ix in range(grid_w):
                        x = start_w + f32(pw) * bin_w + f32(ix + 0.5) * bin_w / fgrid_w
                        if y < -one or y > fheight or x < -one or x > fwidth:
                            continue  # a sample off the map counts zero
                        yy = max(y, zero)
                        xx = max(x, zero)
                        y_low, x_low = int(yy), int(xx)
                        if y_low >= height - 1:
                            y_low = height - 1
                            y_high = y_low
                            yy = f32(y_low)
                        else:
                            y_high = y_low + 1
                        if x_low >= width - 1:
                            x_low = width - 1
                            x_high = x_low
                            xx = f32(x_low)
                        else:
                            x_high = x_low + 1
                        ly = yy - f32(y_low)
                        lx = xx - f32(x_low)
                        hy = one - ly
                        hx = one - lx
                        w1, w2, w3, w4 = hy * hx, hy * lx, ly * hx, ly * lx
                        v1 = features[b, y_low, x_low]
                        v2 = features[b, y_low, x_high]
                        v3 = features[b, y_high, x_low]
                        v4 = features[b, y_high, x_high]
                        for c in range(channels):
                            acc[c] += w1 * v1[c] + w2 * v2[c] + w3 * v3[c] + w4 * v4[c]
                for c in range(channels):
                    acc[c] /= count


def roi_align_nhwc(
    input: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """``torchvision.ops.roi_align(input, rois, ...)`` on the CPU, without autograd.

    input: (N, C, H, W) float32, any memory format (channels-last is read in place, NCHW is
    permuted once); rois: (R, 5) ``[batch_index, x1, y1, x2, y2]``. Returns (R, C, P_h, P_w) in the
    channels-last memory format."""
    if input.device.type != "cpu" or input.dtype != torch.float32:
        raise ValueError(
            f"roi_align_nhwc: a float32 CPU tensor expected, got {input.dtype} on {input.device}"
        )
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f"roi_align_nhwc: rois must be (R, 5), got {tuple(rois.shape)}")
    n, c, _, _ = input.shape
    pooled_h, pooled_w = output_size
    nhwc = input.detach().permute(0, 2, 3, 1).contiguous()  # a view when input is channels-last
    boxes = rois.detach().to(input.dtype).contiguous()
    if len(boxes) and (int(boxes[:, 0].min()) < 0 or int(boxes[:, 0].max()) >= n):
        raise ValueError(f"roi_align_nhwc: batch indices must be in [0, {n}), got rois[:, 0] out of range")
    out = torch.zeros((len(boxes), pooled_h, pooled_w, c), dtype=input.dtype)
    if len(boxes):
        torch_threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
        numba.set_num_threads(max(1, min(torch_threads, numba.config.NUMBA_NUM_THREADS)))
        try:
            scale = np.float32(spatial_scale)
            args = (pooled_h, pooled_w, int(sampling_ratio), bool(aligned))
            _roi_align_nhwc(nhwc.numpy(), boxes.numpy(), scale, *args, out.numpy())
        finally:
            numba.set_num_threads(numba_threads)
            # numba's OpenMP threading layer and torch share one libgomp: numba.set_num_threads sets
            # torch's OpenMP thread count too, and restoring numba's (one per core) would leave a process
            # asked to run 1 thread (OMP_NUM_THREADS, torch.set_num_threads) running one per core.
            torch.set_num_threads(torch_threads)
    return out.permute(0, 3, 1, 2)  # (R, C, P_h, P_w), channels-last strides
