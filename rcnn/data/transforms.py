"""Detection transforms: box-aware resizing, flipping and photometric jitter (albumentations).

A detection transform is a callable ``transform(image, target) -> (image, target)`` where

- ``image`` in: ``(H, W, 3) uint8`` RGB numpy array (the decoded file);
  ``image`` out: ``(3, H', W') float32`` RGB tensor with values in ``0..255``;
- ``target`` in: numpy arrays ``boxes (N, 4) float32`` x1y1x2y2 absolute pixels of the input image, any
  other per-box field with first dimension ``N`` (``labels``, ``iscrowd``, ``area``, ...) and optionally
  ``proposals (P, 4) float32`` x1y1x2y2;
  ``target`` out: the same keys as tensors, boxes and proposals in the pixels of the output image. Boxes are
  clipped to the image; boxes (and proposals) left with zero width or height are dropped, and the per-box
  fields are dropped with them. ``area`` is multiplied by the resize factors ``sx * sy``.

``build_detection_transforms`` is the standard one (Faster R-CNN's shorter side / longer side rule);
``ToTensorTransform`` only converts (and clips) and is what the dataset uses when given no transform.

Random state: ``transform(image, target, seed=s)`` draws every random choice (size, flip, jitter) from
generators seeded with ``s`` alone. The datasets pass the seed of a
:class:`~rcnn.data.sample_keys.SampleKey`, so training augmentation is a function of (seed, stream
position, sample) and repeats exactly on resume, in any process. Without ``seed`` the transform continues
its own generator, seeded once per process from torch (``torch.initial_seed()``, a DataLoader worker's
seed) unless ``set_random_seed`` fixed it: fine for evaluation (no random choices) and one-off use, not
reproducible across a resume.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check on import

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

__all__ = [
    "ResizeShortestEdge",
    "DetectionTransforms",
    "ToTensorTransform",
    "build_detection_transforms",
    "resize_scale",
]

BOX_KEYS = ("boxes", "proposals")


def resize_scale(height: int, width: int, min_size: float, max_size: float) -> float:
    """Faster R-CNN's scale: the shorter side becomes ``min_size`` unless the longer side would then
    exceed ``max_size``: ``scale = min(min_size / short, max_size / long)``."""
    return min(min_size / min(height, width), max_size / max(height, width))


def resized_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    """Output ``(H', W')`` for ``scale``: each side rounded to the nearest integer (at least 1)."""
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


class ResizeShortestEdge(A.SmallestMaxSize):
    """Resize so the shorter side is ``min_size`` (a random choice when several are given) unless the longer
    side would exceed ``max_size``; then the longer side is ``max_size``. Exact rule:
    ``scale = min(min_size / short, max_size / long)``, sides rounded to the nearest pixel.

    Boxes scale by ``W'/W`` and ``H'/H`` (albumentations keeps them normalised internally).
    """

    def __init__(self, min_size: int | Sequence[int], max_size: int, p: float = 1.0) -> None:
        sizes = [int(s) for s in (min_size if isinstance(min_size, Sequence) else [min_size])]
        if not sizes or min(sizes) <= 0 or max_size <= 0:
            raise ValueError(f"min_size and max_size must be positive, got {min_size!r}, {max_size!r}")
        super().__init__(max_size=sizes, p=p)
        self.min_sizes = sizes
        self.max_longest = int(max_size)

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        height, width = params["shape"][:2]
        size = self.min_sizes[0] if len(self.min_sizes) == 1 else self.py_random.choice(self.min_sizes)
        return {"scale": resize_scale(height, width, size, self.max_longest)}

    def apply(self, img: np.ndarray, scale: float, **params: Any) -> np.ndarray:
        new_h, new_w = resized_shape(img.shape[0], img.shape[1], scale)
        if (new_h, new_w) == img.shape[:2]:
            return img
        return cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)


def _split_target(target: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None, dict[str, np.ndarray]]:
    boxes = np.asarray(target["boxes"], dtype=np.float32).reshape(-1, 4)
    proposals = target.get("proposals")
    if proposals is not None:
        proposals = np.asarray(proposals, dtype=np.float32).reshape(-1, 4)
    per_box = {k: np.asarray(v) for k, v in target.items() if k not in BOX_KEYS}
    for key, value in per_box.items():
        if value.ndim == 0 or value.shape[0] != boxes.shape[0]:
            raise ValueError(
                f"target field '{key}' has shape {value.shape}, expected ({boxes.shape[0]}, ...)"
            )
    return boxes, proposals, per_box


def _clip_and_keep(boxes: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Clip (N, 4) boxes to the image; return them and the indices of those with positive size."""
    boxes = boxes.copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    keep = np.nonzero((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))[0]
    return boxes[keep], keep


def _image_to_tensor(image: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in 0..255."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()


def _tensor_target(
    boxes: np.ndarray,
    keep: np.ndarray,
    per_box: dict[str, np.ndarray],
    proposals: np.ndarray | None,
    sxy: float,
) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {"boxes": torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32))}
    for key, value in per_box.items():
        value = value[keep]
        if key == "area":
            value = value.astype(np.float32) * np.float32(sxy)
        out[key] = torch.from_numpy(np.ascontiguousarray(value))
    if proposals is not None:
        out["proposals"] = torch.from_numpy(np.ascontiguousarray(proposals, dtype=np.float32).reshape(-1, 4))
    return out


class ToTensorTransform:
    """No geometric change: converts to tensors, clips boxes/proposals to the image and drops empty ones.
    ``seed`` is accepted (the datasets pass a sample's seed) and unused: nothing is random."""

    def __call__(
        self, image: np.ndarray, target: dict[str, Any], seed: int | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        boxes, proposals, per_box = _split_target(target)
        h, w = image.shape[:2]
        boxes, keep = _clip_and_keep(boxes, h, w)
        if proposals is not None:
            proposals, _ = _clip_and_keep(proposals, h, w)
        return _image_to_tensor(image), _tensor_target(boxes, keep, per_box, proposals, 1.0)


class DetectionTransforms:
    """An albumentations pipeline applied to an image, its boxes and (optionally) its proposals.

    Boxes and proposals go through the pipeline as one bbox set with a source index, so both get exactly the
    same geometric transform; boxes clipped to zero size are dropped with their per-box fields.
    """

    def __init__(self, transforms: Sequence[A.BasicTransform]) -> None:
        self.compose = A.Compose(
            list(transforms),
            bbox_params=A.BboxParams(
                format="pascal_voc",
                label_fields=["box_index"],
                clip=True,
                filter_invalid_bboxes=True,
                min_area=0.0,
                min_visibility=0.0,
                min_width=0.0,
                min_height=0.0,
            ),
        )
        self._seeded_pid: int | None = None

    def _seed(self, seed: int) -> None:
        """One numpy and one Python generator seeded with ``seed``, shared by every transform of the
        pipeline (albumentations' ``set_random_seed`` gives each transform its own generator from the same
        seed, so e.g. the flip and the size choice would be drawn from the same first number)."""
        seed = int(seed) % 2**64
        self.compose.set_random_state(np.random.default_rng(seed), random.Random(seed))

    def _maybe_reseed(self) -> None:
        pid = os.getpid()
        if self._seeded_pid != pid:
            info = torch.utils.data.get_worker_info()
            self._seed(info.seed if info is not None else torch.initial_seed())
            self._seeded_pid = pid

    def set_random_seed(self, seed: int) -> None:
        """Fix the sequence of the calls without ``seed`` (overrides the automatic per-process seeding)."""
        self._seed(seed)
        self._seeded_pid = os.getpid()

    def __call__(
        self, image: np.ndarray, target: dict[str, Any], seed: int | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``seed``: draw this call's random choices from ``seed`` alone (see the module docstring)."""
        if seed is None:
            self._maybe_reseed()
        else:
            self._seed(seed)
        boxes, proposals, per_box = _split_target(target)
        h, w = image.shape[:2]
        # clip first: albumentations rejects coordinates outside the image before its own clipping
        boxes, keep0 = _clip_and_keep(boxes, h, w)
        per_box = {k: v[keep0] for k, v in per_box.items()}
        n = boxes.shape[0]
        all_boxes = boxes
        if proposals is not None:
            proposals, _ = _clip_and_keep(proposals, h, w)
            all_boxes = np.concatenate([boxes, proposals], axis=0)
        out = self.compose(image=image, bboxes=all_boxes, box_index=np.arange(all_boxes.shape[0]))
        new_image = out["image"]
        nh, nw = new_image.shape[:2]
        index = np.asarray(out["box_index"], dtype=np.int64).reshape(-1)
        coords = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
        coords, ok = _clip_and_keep(coords, nh, nw)  # guards against float error at the border
        index = index[ok]
        is_box = index < n
        kept_boxes, keep = coords[is_box], index[is_box]
        new_props = coords[~is_box] if proposals is not None else None
        sxy = (nw / w) * (nh / h)
        return _image_to_tensor(new_image), _tensor_target(kept_boxes, keep, per_box, new_props, sxy)


def build_detection_transforms(
    train: bool,
    min_size: list[int] | int,
    max_size: int,
    hflip_prob: float = 0.5,
    color_jitter: float = 0.0,
) -> DetectionTransforms:
    """The detection pipeline.

    Resize: shorter side ``min_size`` (with several values, a random one per image in training: multi-scale;
    at test time the first) unless the longer side would exceed ``max_size`` (see ``resize_scale``).
    Training adds a horizontal flip with probability ``hflip_prob`` and, when ``color_jitter > 0``,
    brightness/contrast/saturation jitter of that strength (factors in ``[1 - s, 1 + s]``).
    """
    sizes = list(min_size) if isinstance(min_size, Sequence) else [int(min_size)]
    if not train:
        sizes = sizes[:1]
    ops: list[A.BasicTransform] = [ResizeShortestEdge(sizes, max_size)]
    if train and hflip_prob > 0:
        ops.append(A.HorizontalFlip(p=float(hflip_prob)))
    if train and color_jitter > 0:
        s = float(color_jitter)
        ops.append(
            A.ColorJitter(
                brightness=(max(0.0, 1 - s), 1 + s),
                contrast=(max(0.0, 1 - s), 1 + s),
                saturation=(max(0.0, 1 - s), 1 + s),
                hue=(0.0, 0.0),
                p=1.0,
            )
        )
    return DetectionTransforms(ops)
