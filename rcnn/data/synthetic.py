"""Built-in synthetic datasets, deterministic from a seed (no download needed).

Detection (``make_detection_dataset(out_dir, ...)``) writes, under ``out_dir``::

    train/000001.png ...   train.json   (COCO format, boxes xywh in pixels)
    val/000001.png ...     val.json

Every image has ``min_objects..max_objects`` objects from 9 categories (circle, square, triangle, star,
cross, ring and the digits 2, 5, 7) at sizes ``min_scale..max_scale`` of the shorter image side, random
colours (contrasting with what they cover), rotations and mild stretch, over crops of natural photos and
textures bundled with scikit-image. Boxes are tight around the drawn shape (the full extent as drawn); an
object is never left more than ``max_occlusion`` hidden by later ones (such placements are re-drawn, and
an object still hidden more than that is not annotated). Category ids are ``1..9`` in the order above.

Classification (``make_classification_dataset(out_dir, ...)``) writes one centred object per image in
ImageFolder layout: ``out_dir/train/<category>/000000.png``, ``out_dir/val/<category>/...``.

Each image draws from its own generator seeded by ``(seed, split, index)``, so the output is byte-identical
for a seed whatever the number of worker processes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from rcnn.data.synthetic_render import (
    CATEGORIES,
    CATEGORY_NAMES,
    background_sources,
    render_centred,
    render_scene,
    templates,
)

__all__ = ["CATEGORY_NAMES", "make_detection_dataset", "make_classification_dataset"]

_SPLITS = {"train": 0, "val": 1}
_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 3]


def _write_png(path: str, rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), _PNG)
    if not ok:
        raise OSError(f"cannot encode {path}")
    with open(path, "wb") as f:
        f.write(data.tobytes())


def _detection_job(args: tuple) -> list[dict[str, Any]]:
    (
        split_dir,
        seed,
        split_code,
        index,
        height,
        width,
        min_objects,
        max_objects,
        min_scale,
        max_scale,
        occl,
    ) = args
    rng = np.random.default_rng([seed, split_code, index])
    n = int(rng.integers(min_objects, max_objects + 1))
    image, objects = render_scene(rng, height, width, n, min_scale, max_scale, max_occlusion=occl)
    _write_png(os.path.join(split_dir, f"{index + 1:06d}.png"), image)
    return [{"category_id": p.category + 1, "bbox": list(p.box), "area": int(p.mask.sum())} for p in objects]


def _classification_job(args: tuple) -> None:
    path, seed, split_code, category, index, size = args
    rng = np.random.default_rng([seed, 2 + split_code, category, index])
    _write_png(path, render_centred(rng, category, size))


def _run(fn, jobs: list[tuple], workers: int, desc: str) -> Iterable[Any]:
    if workers <= 1 or len(jobs) < 16:
        return [fn(j) for j in tqdm(jobs, desc=desc, leave=False)]
    background_sources()  # loaded once here: forked workers inherit them
    templates()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunk = max(1, len(jobs) // (workers * 8))
        return list(tqdm(pool.map(fn, jobs, chunksize=chunk), total=len(jobs), desc=desc, leave=False))


def _size(image_size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if h < 16 or w < 16:
        raise ValueError(f"image_size must be at least 16 pixels, got {image_size!r}")
    return int(h), int(w)


def _default_workers() -> int:
    return min(4, os.cpu_count() or 1)


def make_detection_dataset(
    out_dir: str | os.PathLike,
    num_train: int,
    num_val: int,
    image_size: int | tuple[int, int] = 256,
    seed: int = 0,
    min_objects: int = 2,
    max_objects: int = 6,
    min_scale: float = 0.08,
    max_scale: float = 0.6,
    max_occlusion: float = 0.5,
    workers: int | None = None,
) -> dict[str, str]:
    """Write the synthetic detection set under ``out_dir`` (see the module docstring).

    ``image_size`` is the side (or ``(H, W)``); object sizes are ``min_scale..max_scale`` of the shorter
    side. Returns the paths ``{"train_images", "train_annotations", "val_images", "val_annotations"}``.
    """
    height, width = _size(image_size)
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects}, {max_objects}")
    if not 0 < min_scale <= max_scale < 1:
        raise ValueError(f"need 0 < min_scale <= max_scale < 1, got {min_scale}, {max_scale}")
    workers = _default_workers() if workers is None else workers
    out_dir = str(out_dir)
    paths: dict[str, str] = {}
    categories = [
        {"id": k + 1, "name": name, "supercategory": sup} for k, (name, sup) in enumerate(CATEGORIES)
    ]
    for split, count in (("train", num_train), ("val", num_val)):
        split_dir = os.path.join(out_dir, split)
        os.makedirs(split_dir, exist_ok=True)
        params = (height, width, min_objects, max_objects, min_scale, max_scale, max_occlusion)
        jobs = [(split_dir, seed, _SPLITS[split], i, *params) for i in range(count)]
        results = _run(_detection_job, jobs, workers, f"synthetic detection {split}")
        images, annotations = [], []
        for i, objects in enumerate(results):
            images.append({"id": i + 1, "file_name": f"{i + 1:06d}.png", "height": height, "width": width})
            for obj in objects:
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "iscrowd": 0, **obj})
        data = {
            "info": {
                "description": "rcnn synthetic detection set",
                "seed": seed,
                "split": split,
                "image_size": [height, width],
                "objects_per_image": [min_objects, max_objects],
                "scale": [min_scale, max_scale],
            },
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        json_path = os.path.join(out_dir, f"{split}.json")
        with open(json_path, "w") as f:
            json.dump(data, f, separators=(",", ":"))
        paths[f"{split}_images"] = split_dir
        paths[f"{split}_annotations"] = json_path
    return paths


def make_classification_dataset(
    out_dir: str | os.PathLike,
    num_train_per_class: int,
    num_val_per_class: int,
    image_size: int = 64,
    seed: int = 0,
    workers: int | None = None,
) -> dict[str, str]:
    """Write the synthetic classification set under ``out_dir`` in ImageFolder layout (one folder per
    category, classes sorted by name give the class index). Returns ``{"train": dir, "val": dir}``."""
    size = _size(image_size)[0]
    workers = _default_workers() if workers is None else workers
    out_dir = str(out_dir)
    paths: dict[str, str] = {}
    for split, count in (("train", num_train_per_class), ("val", num_val_per_class)):
        jobs = []
        for c, name in enumerate(CATEGORY_NAMES):
            class_dir = os.path.join(out_dir, split, name)
            os.makedirs(class_dir, exist_ok=True)
            for i in range(count):
                jobs.append((os.path.join(class_dir, f"{i:06d}.png"), seed, _SPLITS[split], c, i, size))
        _run(_classification_job, jobs, workers, f"synthetic classification {split}")
        paths[split] = os.path.join(out_dir, split)
    return paths
