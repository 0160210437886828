"""COCO-format detection dataset (pycocotools).

``CocoDetection(images_dir, annotation_file, transforms)[i] -> (image, target)``:

- ``image``: ``(3, H, W) float32`` RGB, values ``0..255`` (after the transforms);
- ``target``: ``boxes (N, 4) float32`` x1y1x2y2 absolute pixels, ``labels (N,) int64`` in ``1..K``,
  ``image_id`` (int, the file's id), ``iscrowd (N,) int64``, ``area (N,) float32`` (scaled with the image),
  ``orig_size (2,) int64`` [H, W] of the file, ``size (2,) int64`` [H, W] after the transforms and, with a
  proposals file, ``proposals (P, 4) float32`` x1y1x2y2 with the same geometric transform as the boxes.

Labels: the file's category ids, sorted, map to ``1..K`` (``category_to_label``, ``label_to_category``);
``class_names[k - 1]`` is the name of label ``k``.

Crowd boxes (``iscrowd=1``) are removed from the returned target by default (``drop_crowd=True``): a
detector must not learn from them, and evaluation reads them from ``coco`` (the ground truth) instead.
``filter_empty=True`` removes images without any non-crowd box from the index.

Proposals file (Fast R-CNN): a ``.npz`` whose key ``str(image_id)`` holds a ``(P, 4) float32`` array of
x1y1x2y2 boxes in the pixels of the image file, or a directory holding ``<image_id>.npy`` files of the same
arrays. An image with no entry raises ``DatasetError``.

Indices: ``ds[i]`` or ``ds[SampleKey(i, seed)]`` (what the training samplers yield): the transforms then
draw their random choices from ``seed`` alone (``rcnn.data.sample_keys``).

Errors: the annotation file is validated at construction (structure, ids, boxes) and each image when it is
loaded; problems raise ``DatasetError`` naming the file and the image/annotation id. With
``skip_invalid=True`` a bad annotation or image record is dropped with one warning each and a count at the
end; an image that cannot be read at load time is reported once and replaced by the next readable index.
Boxes outside the image by less than one pixel are clipped; further out is an error.
The user's files are only ever read.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from torch import Tensor
from torch.utils.data import Dataset

from rcnn.data.check import check_image_files, describe_problems, raise_problems
from rcnn.data.errors import DatasetError, load_coco_json
from rcnn.data.image import read_image
from rcnn.data.sample_keys import SampleKey, split_key
from rcnn.data.transforms import ToTensorTransform

logger = logging.getLogger(__name__)

__all__ = ["CocoDetection", "read_image", "DatasetError"]


class _Proposals:
    """Lazy reader of a proposals file (opened once per process: npz handles are not fork safe)."""

    def __init__(self, path: str) -> None:
        if not os.path.exists(path):
            raise DatasetError("proposals file not found", file=path)
        self.path = path
        self._npz: Any = None
        self._pid: int | None = None
        if not os.path.isdir(path):
            try:
                with np.load(path) as npz:
                    self.keys = set(npz.files)
            except Exception as exc:  # noqa: BLE001 - any failure means "not a readable npz"
                raise DatasetError(f"cannot read proposals (.npz expected): {exc}", file=path) from None

    def get(self, image_id: int) -> np.ndarray:
        if os.path.isdir(self.path):
            file = os.path.join(self.path, f"{image_id}.npy")
            if not os.path.exists(file):
                raise DatasetError("no proposals for this image", file=file, image_id=image_id)
            array = np.load(file)
            where = file
        else:
            if str(image_id) not in self.keys:
                raise DatasetError("no proposals for this image", file=self.path, image_id=image_id)
            if self._pid != os.getpid():
                self._npz = np.load(self.path)
                self._pid = os.getpid()
            array = self._npz[str(image_id)]
            where = self.path
        array = np.asarray(array, dtype=np.float32)
        if array.size == 0:
            return np.zeros((0, 4), np.float32)
        if array.ndim != 2 or array.shape[1] != 4:
            raise DatasetError(
                f"proposals must have shape (P, 4), got {array.shape}", file=where, image_id=image_id
            )
        if not np.isfinite(array).all():
            raise DatasetError("proposals contain NaN or infinite values", file=where, image_id=image_id)
        return array


class CocoDetection(Dataset):
    """A COCO-format detection dataset; see the module docstring for the target contract.

    Args:
        images_dir: folder the ``file_name`` of each image is relative to.
        annotation_file: COCO json (``images``, ``annotations``, ``categories``; boxes ``xywh``).
        transforms: ``transform(image (H, W, 3) uint8, target of numpy arrays) -> (image tensor, target)``
            (``rcnn.data.transforms``); ``None`` converts to tensors without resizing.
        filter_empty: drop images without non-crowd boxes from the index.
        skip_invalid: skip bad records / unreadable images with a warning instead of raising.
        proposals_file: ``.npz`` (keys ``str(image_id)``) or directory of ``<image_id>.npy``, ``(P, 4)``
            x1y1x2y2 in file pixels.
        drop_crowd: remove ``iscrowd=1`` boxes from the returned targets (default True).
    """

    def __init__(
        self,
        images_dir: str | os.PathLike,
        annotation_file: str | os.PathLike,
        transforms: Callable[[np.ndarray, dict[str, Any]], tuple[Tensor, dict[str, Tensor]]] | None = None,
        *,
        filter_empty: bool = True,
        skip_invalid: bool = False,
        proposals_file: str | os.PathLike | None = None,
        drop_crowd: bool = True,
    ) -> None:
        self.images_dir = str(images_dir)
        self.annotation_file = str(annotation_file)
        self.transforms = transforms if transforms is not None else ToTensorTransform()
        self.skip_invalid = skip_invalid
        self.drop_crowd = drop_crowd
        self.filter_empty = filter_empty
        if not os.path.isdir(self.images_dir):
            raise DatasetError("images directory not found", file=self.images_dir)

        dataset = load_coco_json(self.annotation_file, skip_invalid=skip_invalid)
        self.coco = COCO()
        self.coco.dataset = dataset
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()

        cats = sorted(dataset["categories"], key=lambda c: c["id"])
        self.category_to_label: dict[int, int] = {c["id"]: k + 1 for k, c in enumerate(cats)}
        self.label_to_category: dict[int, int] = {k: c for c, k in self.category_to_label.items()}
        self.class_names: list[str] = [str(c["name"]) for c in cats]
        self.num_classes = len(cats)

        ids = [img["id"] for img in dataset["images"]]
        if filter_empty:
            ids = [i for i in ids if any(not a.get("iscrowd", 0) for a in self.coco.imgToAnns.get(i, []))]
        self.ids: list[int] = ids
        self.proposals = _Proposals(str(proposals_file)) if proposals_file else None
        self._bad: set[int] = set()

    # ---------------------------------------------------------------------------------------------- index
    def __len__(self) -> int:
        return len(self.ids)

    def image_info(self, index: int) -> dict[str, Any]:
        """``{"id", "file_name", "height", "width"}`` of the image at ``index`` (from the json)."""
        img = self.coco.imgs[self.ids[index]]
        return {k: img[k] for k in ("id", "file_name", "height", "width")}

    def aspect_ratios(self) -> list[float]:
        """Width / height of every image in index order, from the json (no decoding)."""
        return [self.coco.imgs[i]["width"] / self.coco.imgs[i]["height"] for i in self.ids]

    def image_path(self, index: int) -> str:
        return os.path.join(self.images_dir, self.coco.imgs[self.ids[index]]["file_name"])

    def check_images(self) -> int:
        """Check every image file of the index before use (exists, header reads as an image of the
        annotated size; no decoding). Raises one :class:`DatasetError` listing the problems, or with
        ``skip_invalid`` drops those images from the index with a warning. Returns how many were dropped."""
        records = [
            (
                self.image_path(i),
                self.ids[i],
                (self.coco.imgs[self.ids[i]]["height"], self.coco.imgs[self.ids[i]]["width"]),
            )
            for i in range(len(self.ids))
        ]
        problems = check_image_files(records)
        if not self.skip_invalid:
            raise_problems(problems, self.annotation_file)
            return 0
        if problems:
            logger.warning("skipping: %s", describe_problems(problems, self.annotation_file))
            bad = {image_id for _, image_id, _ in problems}
            self.ids = [i for i in self.ids if i not in bad]
        return len(problems)

    # ----------------------------------------------------------------------------------------------- items
    def raw_target(self, index: int) -> dict[str, np.ndarray]:
        """The annotations of ``index`` as numpy arrays in the pixels of the file (before the transforms):
        ``boxes (N, 4) float32`` x1y1x2y2, ``labels (N,) int64``, ``iscrowd (N,) int64``,
        ``area (N,) float32``.
        """
        image_id = self.ids[index]
        info = self.coco.imgs[image_id]
        anns = self.coco.imgToAnns.get(image_id, [])
        if self.drop_crowd:
            anns = [a for a in anns if not a.get("iscrowd", 0)]
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, info["width"])
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, info["height"])
        return {
            "boxes": boxes,
            "labels": np.array([self.category_to_label[a["category_id"]] for a in anns], dtype=np.int64),
            "iscrowd": np.array([int(a.get("iscrowd", 0)) for a in anns], dtype=np.int64),
            "area": np.array([a["area"] for a in anns], dtype=np.float32),
        }

    def _load(self, index: int, seed: int | None = None) -> tuple[Tensor, dict[str, Any]]:
        image_id = self.ids[index]
        info = self.coco.imgs[image_id]
        path = self.image_path(index)
        image = read_image(path, image_id)
        if image.shape[:2] != (info["height"], info["width"]):
            raise DatasetError(
                f"image is {image.shape[1]}x{image.shape[0]} (WxH) but the annotation file says "
                f"{info['width']}x{info['height']}",
                file=path,
                image_id=image_id,
            )
        target: dict[str, Any] = self.raw_target(index)
        if self.proposals is not None:
            target["proposals"] = self.proposals.get(image_id)
        if seed is None:
            image_t, out = self.transforms(image, target)
        else:
            image_t, out = self.transforms(image, target, seed=seed)
        out["image_id"] = int(image_id)
        out["orig_size"] = torch.tensor([info["height"], info["width"]], dtype=torch.int64)
        out["size"] = torch.tensor([image_t.shape[-2], image_t.shape[-1]], dtype=torch.int64)
        return image_t, out

    def __getitem__(self, key: int | SampleKey) -> tuple[Tensor, dict[str, Any]]:
        index, seed = split_key(key)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        if not self.skip_invalid:
            return self._load(index, seed)
        for step in range(len(self)):
            j = (index + step) % len(self)
            if j in self._bad:
                continue
            try:
                return self._load(j, seed)
            except DatasetError as exc:
                self._bad.add(j)
                logger.warning("skipping unreadable image (index %d): %s", j, exc)
        raise DatasetError("no readable image left in the dataset", file=self.annotation_file)
