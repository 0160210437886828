"""Two detection sets made from scikit-image's bundled photos, for the accuracy section: data the detector
defaults were not tuned on (they were tuned on :mod:`rcnn.data.synthetic`'s glyphs and shapes).

* **photo objects on textures** (:data:`PHOTO_OBJECTS`): five objects cut from the photos with fixed crop
  boxes (the astronaut's face, the coffee cup, the cat's head, one coin, the rocket on its pad), each
  rescaled to a random size (longer side 20-120 px at 256 px, aspect ratio jittered by up to x1.28 either
  way, mirrored half the time, brightness x0.8-1.2) and pasted, 2-6 per image, onto a random square crop
  of a tinted texture (``brick``, ``grass``, ``gravel``). Objects may overlap: a new box keeps IoU <= 0.3
  with every earlier one and covers at most half of any of them (it is pasted on top, so each object
  keeps at least half of its box visible). The box is the pasted rectangle.
* **photo shapes on photos** (:data:`PHOTO_SHAPES`): rectangles, ellipses, triangles and pentagons (the
  category is the shape) filled with a flat colour, a tinted texture or a patch of a photo
  (:func:`tools.benchmarks.composites.make_composite`), 3-8 per image, sides 5-25% of the image
  (12-64 px at 256 px, the width 0.5-2x the height), never overlapping, on a random square crop of a
  photo (astronaut, coffee, chelsea, rocket, camera, hubble_deep_field, immunohistochemistry). The box is
  the tight box of the shape's mask.

Category ids are not contiguous (the datasets' edge maps them to labels 1..K). Each set is written as
COCO-format JSON (``train.json``, ``val.json``: boxes ``[x, y, w, h]`` in pixels) and PNG images
(``train/000001.png``, ...), square images of ``image_size``; image ``i`` of a split is drawn from
``numpy.random.default_rng([seed, set code, split code, i])`` alone, so a set is the same for a seed on
every run. Nothing is downloaded: scikit-image ships these photos.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from rcnn.visualization import write_image
from tools.benchmarks.composites import load_photo, make_composite

SPLITS = {"train": 0, "val": 1}
TEXTURES = ("brick", "grass", "gravel")
BACKGROUND_PHOTOS = (
    "astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field", "immunohistochemistry",
)  # fmt: skip
REFERENCE_SIZE = 256  # object sizes below are in pixels of a 256 x 256 image, scaled with image_size

# Rendering one image: (rng, image side, cache of loaded photos) -> (image (S, S, 3) uint8 RGB,
# boxes (G, 4) float32 xyxy, exclusive ends, G category ids)
Render = Callable[[np.random.Generator, int, dict], tuple[np.ndarray, np.ndarray, list[int]]]


@dataclass(frozen=True)
class ObjectSource:
    """One category of the photo-object set: a crop of a scikit-image photo."""

    category_id: int
    name: str
    photo: str  # a function of skimage.data
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 (exclusive ends) in the photo as skimage.data returns it


OBJECTS = (
    ObjectSource(3, "face", "astronaut", (152, 16, 303, 191)),
    ObjectSource(7, "cup", "coffee", (172, 17, 410, 307)),
    ObjectSource(11, "cat head", "chelsea", (100, 20, 390, 300)),
    ObjectSource(19, "coin", "coins", (131, 29, 178, 72)),
    ObjectSource(23, "rocket", "rocket", (285, 115, 360, 412)),
)
SHAPES = {"rectangle": 2, "ellipse": 5, "triangle": 9, "pentagon": 14}  # shape -> category id


@dataclass(frozen=True)
class PhotoSet:
    """One dataset: its key (folder and set code), title, categories ``(id, name)`` and renderer."""

    key: str
    code: int
    title: str
    categories: tuple[tuple[int, str], ...]
    render: Render
    description: str


def _cached(cache: dict, name: str) -> np.ndarray:
    if name not in cache:
        cache[name] = load_photo(name)
    return cache[name]


def _square_crop(photo: np.ndarray, rng: np.random.Generator, size: int, min_fraction: float) -> np.ndarray:
    """A random square crop of ``photo`` (side ``min_fraction``..1 of its shorter side) resized to
    ``size`` x ``size``."""
    height, width = photo.shape[:2]
    side = int(rng.uniform(min_fraction, 1.0) * min(height, width))
    y, x = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    return cv2.resize(photo[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)


def _iou_and_cover(box: np.ndarray, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """box: (4,); others: (M, 4). Returns the IoU with each and the fraction of each that ``box`` covers."""
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / (area + areas - inter), inter / areas


def render_photo_objects(
    rng: np.random.Generator, size: int, cache: dict, *, max_iou: float = 0.3, max_cover: float = 0.5
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One image of :data:`PHOTO_OBJECTS` (see the module docstring)."""
    texture = _cached(cache, TEXTURES[rng.integers(len(TEXTURES))])
    tint = rng.uniform(100, 255, 3).astype(np.float32) / 255.0
    image = (_square_crop(texture, rng, size, 0.25).astype(np.float32) * tint).astype(np.uint8)
    scale = size / REFERENCE_SIZE
    boxes: list[list[int]] = []
    categories: list[int] = []
    for _ in range(int(rng.integers(2, 7))):
        for _attempt in range(50):
            source = OBJECTS[rng.integers(len(OBJECTS))]
            x1, y1, x2, y2 = source.box
            aspect = (x2 - x1) / (y2 - y1) * math.exp(rng.uniform(-0.25, 0.25))  # width / height
            longer = rng.uniform(20, 120) * scale
            w, h = (longer, longer / aspect) if aspect >= 1 else (longer * aspect, longer)
            w, h = max(4, round(w)), max(4, round(h))
            x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            box = np.array([x, y, x + w, y + h], dtype=np.float64)
            if boxes:
                iou, cover = _iou_and_cover(box, np.asarray(boxes, dtype=np.float64))
                if (iou > max_iou).any() or (cover > max_cover).any():
                    continue
            crop = _cached(cache, source.photo)[y1:y2, x1:x2]
            patch = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
            if rng.random() < 0.5:
                patch = patch[:, ::-1]
            patch = np.clip(patch.astype(np.float32) * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)
            image[y : y + h, x : x + w] = patch
            boxes.append([x, y, x + w, y + h])
            categories.append(source.category_id)
            break
    return image, np.asarray(boxes, dtype=np.float32).reshape(-1, 4), categories


def render_photo_shapes(
    rng: np.random.Generator, size: int, cache: dict
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One image of :data:`PHOTO_SHAPES` (see the module docstring)."""
    background = _square_crop(
        _cached(cache, BACKGROUND_PHOTOS[rng.integers(len(BACKGROUND_PHOTOS))]), rng, size, 0.5
    )
    image, boxes, kinds = make_composite(
        background, rng, num_objects=int(rng.integers(3, 9)), size_range=(0.05, 0.25),
        cache=cache.setdefault("composites", {}),  # its own entries (textures as float grey)
    )  # fmt: skip
    return image, boxes, [SHAPES[kind.split()[-1]] for kind in kinds]


PHOTO_OBJECTS = PhotoSet(
    "photo_objects", 1, "photo objects on textures", tuple((o.category_id, o.name) for o in OBJECTS),
    render_photo_objects, "five objects cut from scikit-image photos, pasted on tinted textures",
)  # fmt: skip
PHOTO_SHAPES = PhotoSet(
    "photo_shapes", 2, "photo shapes on photos", tuple((cid, name) for name, cid in SHAPES.items()),
    render_photo_shapes, "shapes filled with colours, textures or photo patches, on scikit-image photos",
)  # fmt: skip
PHOTO_SETS = (PHOTO_OBJECTS, PHOTO_SHAPES)


def write_photo_set(
    photo_set: PhotoSet, out_dir: str, num_train: int, num_val: int, image_size: int = 256, seed: int = 0
) -> dict[str, str]:
    """Write ``photo_set`` under ``out_dir`` (``train/``, ``val/``, ``train.json``, ``val.json``).

    Returns the paths ``{"train_images", "train_annotations", "val_images", "val_annotations"}``.
    """
    if image_size < 64:
        raise ValueError(f"image_size must be at least 64 pixels, got {image_size}")
    cache: dict = {}
    categories = [
        {"id": cid, "name": name, "supercategory": photo_set.key} for cid, name in photo_set.categories
    ]
    paths: dict[str, str] = {}
    for split, count in (("train", num_train), ("val", num_val)):
        split_dir = os.path.join(out_dir, split)
        os.makedirs(split_dir, exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            rng = np.random.default_rng([seed, photo_set.code, SPLITS[split], i])
            image, boxes, category_ids = photo_set.render(rng, image_size, cache)
            file_name = f"{i + 1:06d}.png"
            write_image(os.path.join(split_dir, file_name), image)
            images.append({"id": i + 1, "file_name": file_name, "height": image_size, "width": image_size})
            for (x1, y1, x2, y2), category_id in zip(boxes.tolist(), category_ids):
                annotations.append(
                    {
                        "id": len(annotations) + 1, "image_id": i + 1, "category_id": int(category_id),
                        "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                    }
                )  # fmt: skip
        data = {
            "info": {
                "description": photo_set.description,
                "seed": seed,
                "split": split,
                "image_size": image_size,
            },
            "licenses": [],
            "images": images,
            "annotations": annotations,
            "categories": categories,
        }
        json_path = os.path.join(out_dir, f"{split}.json")
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"))
        paths[f"{split}_images"], paths[f"{split}_annotations"] = split_dir, json_path
    return paths
