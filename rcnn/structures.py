"""Conventions shared by every part of rcnn, written once and checked at the edges.

Boxes
    ``(N, 4) float32``, ``x1, y1, x2, y2``, absolute pixels of the image as given to the model
    (after the data transforms). COCO files store ``x, y, w, h``: convert on load and save only.
Labels
    ``(N,) int64``; ``1..K`` for the K foreground classes, ``0`` is background. ``num_classes == K``.
    The dataset's own category ids are mapped to and from ``1..K`` only at the dataset and evaluator.
Images
    ``(3, H, W) float32`` in ``[0, 255]`` RGB; normalisation and padding happen inside the model.
"""

from __future__ import annotations

from typing import TypedDict

import torch
from torch import Tensor


class Target(TypedDict, total=False):
    """Ground truth of one image.

    boxes: (N, 4) float32 xyxy absolute pixels; labels: (N,) int64 in 1..K;
    image_id: int; iscrowd: (N,) int64 0/1; area: (N,) float32; proposals (Fast R-CNN): (P, 4) float32.
    """

    boxes: Tensor
    labels: Tensor
    image_id: int
    iscrowd: Tensor
    area: Tensor
    proposals: Tensor


class Detections(TypedDict):
    """Detections of one image: boxes (D, 4) float32 xyxy input-image pixels, labels (D,) int64 in 1..K,
    scores (D,) float32, sorted by descending score."""

    boxes: Tensor
    labels: Tensor
    scores: Tensor


def check_image(image: Tensor, where: str = "image") -> None:
    """Raise ValueError unless ``image`` is a float (3, H, W) tensor."""
    if not isinstance(image, Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor (3, H, W), got {type(image).__name__}")
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"{where}: expected shape (3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{where}: expected a floating point tensor, got {image.dtype}")


def check_boxes(boxes: Tensor, where: str = "boxes") -> None:
    """Raise ValueError unless ``boxes`` is a finite (N, 4) float tensor with x2 >= x1 and y2 >= y1."""
    if not isinstance(boxes, Tensor):
        raise TypeError(f"{where}: expected a torch.Tensor (N, 4), got {type(boxes).__name__}")
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{where}: expected shape (N, 4), got {tuple(boxes.shape)}")
    if not boxes.is_floating_point():
        raise ValueError(f"{where}: expected a floating point tensor, got {boxes.dtype}")
    if boxes.numel() and not torch.isfinite(boxes).all():
        raise ValueError(f"{where}: contains NaN or infinite coordinates")
    if boxes.numel() and ((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any():
        bad = torch.nonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))[0, 0].item()
        raise ValueError(f"{where}: box {bad} is not x1y1x2y2 (x2 < x1 or y2 < y1): {boxes[bad].tolist()}")


def check_target(target: Target, num_classes: int | None = None, where: str = "target") -> None:
    """Validate one training target (boxes, labels) and name the image id in any error."""
    where = f"{where} (image_id={target.get('image_id', '?')})"
    for key in ("boxes", "labels"):
        if key not in target:
            raise KeyError(f"{where}: missing field '{key}'")
    check_boxes(target["boxes"], f"{where} field 'boxes'")
    labels = target["labels"]
    if labels.dim() != 1 or labels.shape[0] != target["boxes"].shape[0]:
        raise ValueError(
            f"{where} field 'labels': expected shape ({target['boxes'].shape[0]},), got {tuple(labels.shape)}"
        )
    if labels.dtype != torch.int64:
        raise ValueError(f"{where} field 'labels': expected int64, got {labels.dtype}")
    if labels.numel() and labels.min() < 1:
        raise ValueError(f"{where} field 'labels': foreground labels are 1..K, got {labels.min().item()}")
    if num_classes is not None and labels.numel() and labels.max() > num_classes:
        raise ValueError(
            f"{where} field 'labels': label {labels.max().item()} is above num_classes={num_classes}"
        )
