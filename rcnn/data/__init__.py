"""Datasets, transforms and batching.

Submodules:

- :mod:`.coco`: ``CocoDetection``, the COCO-format detection dataset (the contract in docs/architecture.md);
- :mod:`.image`: ``read_image``, image files to ``(H, W, 3) uint8`` RGB;
- :mod:`.errors`: ``DatasetError`` (naming the file and the image / annotation id), ``load_coco_json``;
- :mod:`.transforms`: ``build_detection_transforms``, box-aware resize / flip / jitter (albumentations);
- :mod:`.collate`: ``collate_detection``, batches of variable-size images;
- :mod:`.sample_keys`: ``SampleKey``, ``dataset[SampleKey(i, seed)]`` augments item ``i`` with draws
  from ``seed``;
- :mod:`.samplers`: ``TrainingSampler``, ``InferenceSampler``, aspect-ratio grouping, the data loader;
- :mod:`.imagefolder`: ``ImageFolderDataset``, ``build_classification_transforms``, ``ten_crop_transform``;
- :mod:`.synthetic`: ``make_detection_dataset`` / ``make_classification_dataset``, built-in data from a seed
  (scenes drawn by :mod:`.synthetic_render`);
- :mod:`.voc`: ``voc_to_coco``, Pascal VOC XML folders to a COCO dict.

The names below are re-exported lazily (``from rcnn.data import CocoDetection`` imports ``rcnn.data.coco``
on first use), unlike the other packages: import cost forces it. The submodules pull in pycocotools,
albumentations and scikit-image (seconds), and the readers that need only :mod:`.image` and :mod:`.errors`
(the selective search workers, which a forkserver pool starts fresh, and ``tools/voc_to_coco.py``) must not
pay for them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CocoDetection": "rcnn.data.coco",
    "read_image": "rcnn.data.image",
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
