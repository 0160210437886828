"""Small generated COCO-format datasets for the data tests (written in a temporary folder)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np

# category ids deliberately non-contiguous and not in name order
CATEGORIES = [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}, {"id": 11, "name": "bird"}]


def write_image(path: Path, height: int, width: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)


def make_coco(
    root: Path,
    *,
    images: list[dict] | None = None,
    annotations: list[dict] | None = None,
    categories: list[dict] | None = None,
    write_images: bool = True,
) -> tuple[Path, Path]:
    """Write ``root/images/*.png`` and ``root/ann.json``; returns (images_dir, annotation_file).

    Default content: image 1 (40x60, HxW) with two boxes (one crowd), image 2 (50x30) with one box,
    image 3 (20x20) without annotations.
    """
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    if images is None:
        images = [
            {"id": 1, "file_name": "a.png", "height": 40, "width": 60},
            {"id": 2, "file_name": "b.png", "height": 50, "width": 30},
            {"id": 3, "file_name": "c.png", "height": 20, "width": 20},
        ]
    if annotations is None:
        annotations = [
            {"id": 10, "image_id": 1, "category_id": 11, "bbox": [5, 6, 20, 10], "area": 150.0, "iscrowd": 0},
            {
                "id": 11,
                "image_id": 1,
                "category_id": 3,
                "bbox": [30, 0, 30, 40],
                "area": 1200.0,
                "iscrowd": 1,
            },
            {
                "id": 12,
                "image_id": 2,
                "category_id": 7,
                "bbox": [1.5, 2.5, 10, 20],
                "area": 200.0,
                "iscrowd": 0,
            },
        ]
    categories = CATEGORIES if categories is None else categories
    if write_images:
        for k, img in enumerate(images):
            write_image(images_dir / img["file_name"], img["height"], img["width"], seed=k)
    ann_file = root / "ann.json"
    ann_file.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return images_dir, ann_file


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """sha256 and mtime of every file under ``root``."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[path] = (hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return out
