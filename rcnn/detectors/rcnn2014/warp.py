"""Warping region proposals into fixed-size network inputs, as R-CNN does (Girshick et al., 2014, sec. 2.1
and appendix A).

Every proposal, whatever its size or aspect ratio, is warped anisotropically to ``S x S`` pixels (the CNN's
input size, 227 for AlexNet). Before warping, the box is dilated so that at the warped size there are
exactly ``p`` pixels of context around the original box (the paper: ``p = 16``): the original box fills the
inner ``(S - 2p) x (S - 2p)`` square of the crop. Context that falls outside the image is the image mean
(zero after normalisation), as in the original code (``rcnn_im_crop.m``, ``use_square = false``).

Shape shorthand:
    R: boxes; S: warped size (``input_size``); H, W: image size.

Coordinates are continuous: a box ``(x1, y1, x2, y2)`` covers ``[x1, x2) x [y1, y2)`` and pixel ``j``
covers ``[j, j + 1)``. The crop is sampled with ``torchvision.ops.roi_align(aligned=True)``: output pixel
``i`` of a box of width ``w`` samples the image at ``x1 + (i + 0.5) * w / S`` (the centre of its bin), and
with ``sampling_ratio=0`` large boxes are averaged over ``ceil(w / S)`` points per bin (no aliasing).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import roi_align


def context_scale(input_size: int, padding: int) -> float:
    """How much a box is dilated (about its centre) to get ``padding`` pixels of context at ``input_size``:
    ``S / (S - 2p)``."""
    if input_size <= 0:
        raise ValueError(f"input_size must be positive, got {input_size}")
    if padding < 0 or 2 * padding >= input_size:
        raise ValueError(f"context padding must be in [0, input_size / 2), got {padding} for {input_size}")
    return input_size / (input_size - 2 * padding)


def context_boxes(boxes: Tensor, input_size: int, padding: int) -> Tensor:
    """Boxes (R, 4) x1y1x2y2 -> the dilated boxes (R, 4) that, warped to ``input_size x input_size``,
    put each original box exactly on the inner square ``[p, S - p) x [p, S - p)``.

    Example: ``(10, 10, 42, 42)``, ``S = 64``, ``p = 16``: scale 64 / 32 = 2, the box becomes
    ``(-6, -6, 58, 58)`` (partly outside the image: that part is filled with the mean).
    """
    scale = context_scale(input_size, padding)
    boxes = boxes.float()
    half_w = 0.5 * (boxes[:, 2] - boxes[:, 0]) * scale
    half_h = 0.5 * (boxes[:, 3] - boxes[:, 1]) * scale
    cx = 0.5 * (boxes[:, 0] + boxes[:, 2])
    cy = 0.5 * (boxes[:, 1] + boxes[:, 3])
    return torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1)


def warp_boxes(image: Tensor, boxes: Tensor, input_size: int, padding: int = 16) -> Tensor:
    """Crop each box of ``boxes`` (R, 4) with context from the normalised ``image`` (3, H, W) and warp it
    to ``(R, 3, S, S)``. Outside the image the crop is 0 (the mean of a normalised image)."""
    if image.dim() != 3:
        raise ValueError(f"image: expected shape (3, H, W), got {tuple(image.shape)}")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes: expected shape (R, 4), got {tuple(boxes.shape)}")
    if boxes.shape[0] == 0:
        return image.new_zeros((0, image.shape[0], input_size, input_size))
    rois = context_boxes(boxes.to(image.device), input_size, padding).to(image.dtype)
    rois = torch.cat([rois.new_zeros((rois.shape[0], 1)), rois], dim=1)  # (R, 5): batch index 0
    return roi_align(image[None], rois, (input_size, input_size), 1.0, sampling_ratio=0, aligned=True)


def inner_region(input_size: int, padding: int) -> tuple[int, int]:
    """Where the original box lies in the warped crop along each axis: ``[padding, input_size - padding)``."""
    context_scale(input_size, padding)  # validates
    return padding, input_size - padding
