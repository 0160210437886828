"""Datasets, transforms and batching.

- ``coco.CocoDetection``: COCO-format detection dataset (the contract in docs/architecture.md);
- ``transforms.build_detection_transforms``: box-aware resize / flip / jitter (albumentations);
- ``sample_keys.SampleKey``: ``dataset[SampleKey(i, seed)]`` augments item ``i`` with draws from ``seed``;
- ``collate.collate_detection``: batches of variable-size images;
- ``imagefolder.ImageFolderDataset`` + ``build_classification_transforms`` / ``ten_crop_transform``;
- ``synthetic.make_detection_dataset`` / ``make_classification_dataset``: built-in data from a seed;
- ``voc.voc_to_coco``: Pascal VOC XML folders to a COCO dict;
- ``errors.DatasetError``: raised on bad input, naming the file and the image/annotation id.

Submodules are imported on first use (``from rcnn.data import CocoDetection`` works).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CocoDetection": "rcnn.data.coco",
    "read_image": "rcnn.data.coco",
    "DatasetError": "rcnn.data.errors",
    "load_coco_json": "rcnn.data.errors",
    "build_detection_transforms": "rcnn.data.transforms",
    "collate_detection": "rcnn.data.collate",
    "SampleKey": "rcnn.data.sample_keys",
    "ImageFolderDataset": "rcnn.data.imagefolder",
    "build_classification_transforms": "rcnn.data.imagefolder",
    "ten_crop_transform": "rcnn.data.imagefolder",
    "make_detection_dataset": "rcnn.data.synthetic",
    "make_classification_dataset": "rcnn.data.synthetic",
    "voc_to_coco": "rcnn.data.voc",
    "VOC_CLASSES": "rcnn.data.voc",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rcnn.data' has no attribute {name!r}")
