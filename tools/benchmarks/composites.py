"""Annotated test images for proposal benchmarks, made offline from scikit-image's bundled photos.

scikit-image's photos carry no annotations, so objects with known extent are pasted onto them: rectangles,
ellipses, triangles and pentagons filled with a flat colour, a tinted texture (``brick``, ``grass``,
``gravel``) or a patch of another photo. Objects do not overlap; each ground-truth box is the tight box of
the pasted mask (``x1, y1, x2, y2``, exclusive ends). Deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from skimage import data, draw

TEXTURES = ("brick", "grass", "gravel")
PATCH_SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


@dataclass
class Composite:
    """image (H, W, 3) uint8 RGB; boxes (G, 4) float32 xyxy exclusive ends; kinds: G fill/shape names."""

    name: str
    image: np.ndarray
    boxes: np.ndarray
    kinds: list[str]


def load_photo(name: str) -> np.ndarray:
    """A scikit-image bundled photo as (H, W, 3) uint8 RGB (grey images are repeated to 3 channels)."""
    image = np.asarray(getattr(data, name)())
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3]).astype(np.uint8, copy=False)


def _shape_mask(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w) bool mask of a shape drawn inside an h x w box."""
    mask = np.zeros((h, w), dtype=bool)
    if kind == "rectangle":
        mask[:] = True
    elif kind == "ellipse":
        rr, cc = draw.ellipse((h - 1) / 2, (w - 1) / 2, h / 2, w / 2, shape=(h, w))
        mask[rr, cc] = True
    else:
        sides = 3 if kind == "triangle" else 5
        jitter = rng.uniform(-0.3, 0.3, sides) if kind == "triangle" else 0.0
        angles = np.linspace(0, 2 * np.pi, sides, endpoint=False) + jitter + rng.uniform(0, 2 * np.pi)
        ys = (np.sin(angles) + 1) / 2 * (h - 1)
        xs = (np.cos(angles) + 1) / 2 * (w - 1)
        rr, cc = draw.polygon(ys, xs, shape=(h, w))
        mask[rr, cc] = True
    return mask


def _fill(kind: str, h: int, w: int, rng: np.random.Generator, cache: dict) -> np.ndarray:
    """(h, w, 3) uint8 content of an object."""
    if kind == "flat":
        return np.broadcast_to(rng.integers(0, 256, 3, dtype=np.uint8), (h, w, 3)).copy()
    if kind == "texture":
        name = TEXTURES[rng.integers(len(TEXTURES))]
        if name not in cache:  # loaded once per cache (setdefault would load it on every call)
            cache[name] = load_photo(name)[:, :, 0].astype(np.float32)
        tex = cache[name]
        y, x = rng.integers(0, tex.shape[0] - h + 1), rng.integers(0, tex.shape[1] - w + 1)
        tint = rng.uniform(40, 255, 3).astype(np.float32)
        patch = tex[y : y + h, x : x + w, None] / 255.0 * tint
        return np.clip(patch, 0, 255).astype(np.uint8)
    name = PATCH_SOURCES[rng.integers(len(PATCH_SOURCES))]
    if name not in cache:
        cache[name] = load_photo(name)
    src = cache[name]
    y, x = rng.integers(0, src.shape[0] - h + 1), rng.integers(0, src.shape[1] - w + 1)
    return src[y : y + h, x : x + w].copy()


def make_composite(
    photo: np.ndarray,
    rng: np.random.Generator,
    num_objects: int = 8,
    size_range: tuple[float, float] = (0.05, 0.35),
    cache: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Paste up to ``num_objects`` non-overlapping objects on a copy of ``photo`` (H, W, 3) uint8.

    Object sides are ``size_range`` fractions of the photo's shorter side (at least 12 pixels).
    Returns (image, boxes (G, 4) float32, kinds).
    """
    cache = {} if cache is None else cache
    image = photo.copy()
    height, width = image.shape[:2]
    short = min(height, width)
    taken = np.zeros((height, width), dtype=bool)
    boxes, kinds = [], []
    for _ in range(num_objects):
        for _attempt in range(100):
            h = max(12, int(rng.uniform(*size_range) * short))
            w = max(12, int(h * rng.uniform(0.5, 2.0)))
            if h >= height or w >= width:
                continue
            y, x = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
            if taken[max(0, y - 3) : y + h + 3, max(0, x - 3) : x + w + 3].any():
                continue
            shape = ("rectangle", "ellipse", "triangle", "pentagon")[rng.integers(4)]
            fill = ("flat", "texture", "photo")[rng.integers(3)]
            mask = _shape_mask(shape, h, w, rng)
            if mask.sum() < 64:
                continue
            content = _fill(fill, h, w, rng, cache)
            region = image[y : y + h, x : x + w]
            region[mask] = content[mask]
            taken[y : y + h, x : x + w] = True
            rows, cols = np.nonzero(mask)
            boxes.append([x + cols.min(), y + rows.min(), x + cols.max() + 1, y + rows.max() + 1])
            kinds.append(f"{fill} {shape}")
            break
    return image, np.asarray(boxes, dtype=np.float32).reshape(-1, 4), kinds


def make_composites(
    photos: Sequence[str], per_photo: int = 3, seed: int = 0, num_objects: int = 8
) -> list[Composite]:
    """``per_photo`` composites of each named photo (names of ``skimage.data`` functions)."""
    cache: dict = {}
    out = []
    for p, name in enumerate(photos):
        photo = load_photo(name)
        for v in range(per_photo):
            rng = np.random.default_rng([seed, p, v])
            image, boxes, kinds = make_composite(photo, rng, num_objects, cache=cache)
            out.append(Composite(f"{name}-{v}", image, boxes, kinds))
    return out
