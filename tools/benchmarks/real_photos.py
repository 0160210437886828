"""Real photos with hand-drawn boxes: scikit-image's bundled photos and ``real_photos.json`` beside this file.

The boxes were drawn by hand around every clearly visible object of each photo (a person, a head, a cup, a
cat's eye, a rocket, each coin...); the JSON records how, with the scikit-image version and each photo's
size. Loading checks that the photo ``skimage.data.<function>()`` returns now still has that size and that
every box lies inside it, so a changed bundled photo is an error rather than silently misplaced boxes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.benchmarks.composites import load_photo

FIXTURE = Path(__file__).with_name("real_photos.json")


@dataclass
class RealPhoto:
    """image (H, W, 3) uint8 RGB; boxes (G, 4) float32 xyxy exclusive ends; labels: G object names."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    labels: list[str]


def read_fixture(path: str | Path = FIXTURE) -> dict:
    """The fixture's JSON: ``{"made_by", "how", "scikit_image", "box_format", "photos": [...]}``."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_real_photos(names: Sequence[str] | None = None, path: str | Path = FIXTURE) -> list[RealPhoto]:
    """The annotated photos (all, or those whose ``skimage.data`` function is in ``names``), in file order.

    Raises ``ValueError`` naming the file and photo when a photo's size differs from the recorded one or a
    box is empty or outside the photo.
    """
    entries = read_fixture(path)["photos"]
    known = [e["function"] for e in entries]
    if names is not None:
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise ValueError(f"{path}: no annotated photo {unknown}; expected among {known}")
        entries = [e for e in entries if e["function"] in names]
    out = []
    for entry in entries:
        name = entry["function"]
        image = load_photo(name)
        height, width = image.shape[:2]
        if (height, width) != (entry["height"], entry["width"]):
            raise ValueError(
                f"{path}: {name}: skimage.data.{name}() is {height}x{width}, "
                f"the boxes were drawn on {entry['height']}x{entry['width']}"
            )
        boxes = np.asarray([o["box"] for o in entry["objects"]], dtype=np.float32).reshape(-1, 4)
        x1, y1, x2, y2 = boxes.T
        bad = (x1 < 0) | (y1 < 0) | (x2 > width) | (y2 > height) | (x2 <= x1) | (y2 <= y1)
        if bad.any():
            raise ValueError(
                f"{path}: {name}: boxes empty or outside the {height}x{width} photo: {boxes[bad]}"
            )
        out.append(RealPhoto(name, image, boxes, [o["label"] for o in entry["objects"]]))
    return out
