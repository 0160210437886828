"""Rendering of the synthetic images: shape and digit templates, natural backgrounds, object placement.

Each object is a binary template (circle, square, ... and bold digit glyphs) warped into the image with a
random scale, rotation and mild stretch, and filled with a colour picked to contrast with the background
it covers. Its box is the tight extent of the warped mask (full extent as drawn, occluded parts included).
A placement that would hide more than ``max_occlusion`` of an earlier object is re-drawn elsewhere, and an
object that still ends up hidden more than that is not annotated (this keeps every annotated object at
least ``1 - max_occlusion`` visible).

Backgrounds are random crops (with flips) of the natural photos and textures bundled with scikit-image
(only those that load without a download), with their contrast lowered so objects stand out.
All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import skimage.data

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("circle", "shape"),
    ("square", "shape"),
    ("triangle", "shape"),
    ("star", "shape"),
    ("cross", "shape"),
    ("ring", "shape"),
    ("two", "digit"),
    ("five", "digit"),
    ("seven", "digit"),
)
CATEGORY_NAMES: tuple[str, ...] = tuple(name for name, _ in CATEGORIES)
_DIGITS = {"two": "2", "five": "5", "seven": "7"}
_MAX_DIGIT_ROTATION = 25.0  # degrees: digits stay readable
_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
_TEXTURES = ("brick", "grass", "gravel", "camera", "moon", "coins", "cell")
_TEMPLATE_SIZE = 256


@dataclass
class _Template:
    levels: list[np.ndarray]  # float32 masks 0..1, sizes _TEMPLATE_SIZE / 2**k, tight around the shape
    points: np.ndarray  # (P, 2) contour points, in units of the longer side, relative to the centre


def _polygon(points: np.ndarray, size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(points * (size - 1)).astype(np.int32)], 255)
    return mask


def _draw_template(name: str, size: int) -> np.ndarray:
    c = (size - 1) / 2
    if name == "circle":
        mask = np.zeros((size, size), np.uint8)
        cv2.circle(mask, (round(c), round(c)), round(c), 255, -1)
    elif name == "ring":
        mask = np.zeros((size, size), np.uint8)
        cv2.circle(mask, (round(c), round(c)), round(c), 255, -1)
        cv2.circle(mask, (round(c), round(c)), round(0.5 * c), 0, -1)
    elif name == "square":
        mask = np.full((size, size), 255, np.uint8)
    elif name == "triangle":
        mask = _polygon(np.array([[0.5, 0.0], [1.0, 0.866], [0.0, 0.866]]), size)
    elif name == "star":
        angles = -math.pi / 2 + np.arange(10) * math.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, 0.5, 0.21)
        mask = _polygon(np.stack([0.5 + radii * np.cos(angles), 0.5 + radii * np.sin(angles)], 1), size)
    elif name == "cross":
        a, b = 0.33, 0.67
        pts = [[a, 0], [b, 0], [b, a], [1, a], [1, b], [b, b], [b, 1], [a, 1], [a, b], [0, b], [0, a], [a, a]]
        mask = _polygon(np.array(pts, dtype=np.float64), size)
    elif name in _DIGITS:
        mask = np.zeros((size * 2, size * 2), np.uint8)
        scale = cv2.getFontScaleFromHeight(cv2.FONT_HERSHEY_SIMPLEX, size, size // 7)
        cv2.putText(mask, _DIGITS[name], (size // 2, size + size // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, 255,
                    size // 7, cv2.LINE_AA)  # fmt: skip
    else:
        raise KeyError(name)
    x, y, w, h = cv2.boundingRect(mask)
    return mask[y : y + h, x : x + w]


@functools.cache
def templates() -> dict[str, _Template]:
    """The template of every category (built once per process)."""
    out = {}
    for name in CATEGORY_NAMES:
        mask = _draw_template(name, _TEMPLATE_SIZE).astype(np.float32) / 255.0
        levels = [mask]
        while max(levels[-1].shape) > 8:
            m = levels[-1]
            levels.append(
                cv2.resize(
                    m, (max(1, m.shape[1] // 2), max(1, m.shape[0] // 2)), interpolation=cv2.INTER_AREA
                )
            )
        contours, _ = cv2.findContours(
            (mask > 0.5).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        pts = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)
        h, w = mask.shape
        pts = (pts + 0.5 - [w / 2, h / 2]) / max(h, w)
        out[name] = _Template(levels, pts)
    return out


_MAX_SOURCE_SIDE = 512  # sources are stored at most this large (shorter side) to keep crops cheap


@functools.cache
def background_sources() -> tuple[np.ndarray, ...]:
    """Images from scikit-image's bundled data: RGB (H, W, 3) photos and grey (H, W) textures, uint8, those
    that need a download left out. Falls back to smooth noise when none can be loaded."""
    sources = []
    for name in _PHOTOS + _TEXTURES:
        try:
            image = np.asarray(getattr(skimage.data, name)())
        except Exception:  # noqa: BLE001 - missing or needs a download: not used
            continue
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            continue
        if image.ndim == 3:
            image = image[..., :3]
        short = min(image.shape[:2])
        if short > _MAX_SOURCE_SIDE:
            f = _MAX_SOURCE_SIDE / short
            size = (round(image.shape[1] * f), round(image.shape[0] * f))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        sources.append(np.ascontiguousarray(image))
    if not sources:
        rng = np.random.default_rng(12345)
        for _ in range(4):
            noise = rng.random((32, 32, 3)).astype(np.float32)
            smooth = cv2.resize(noise, (256, 256), interpolation=cv2.INTER_CUBIC).clip(0, 1)
            sources.append((smooth * 255).astype(np.uint8))
    return tuple(sources)


def random_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A (height, width, 3) uint8 RGB crop of a bundled photo/texture: random crop and flips, grey
    textures tinted with two random colours, contrast lowered towards the mean."""
    sources = background_sources()
    src = sources[rng.integers(len(sources))]
    sh, sw = src.shape[:2]
    aspect = width / height
    ch = max(1, int(min(sh, sw / aspect) * rng.uniform(0.35, 1.0)))
    cw = max(1, min(sw, int(ch * aspect)))
    y0 = int(rng.integers(0, sh - ch + 1))
    x0 = int(rng.integers(0, sw - cw + 1))
    crop = cv2.resize(src[y0 : y0 + ch, x0 : x0 + cw], (width, height), interpolation=cv2.INTER_AREA)
    values = np.arange(256, dtype=np.float32)[:, None]
    if crop.ndim == 2:  # grey texture: map dark..light to two random colours
        dark, light = rng.uniform(0, 140, 3), rng.uniform(110, 255, 3)
        lut = dark + values / 255.0 * (light - dark)  # (256, 3)
        crop = cv2.merge([crop, crop, crop])
    else:
        lut = np.repeat(values, 3, axis=1)
    if rng.random() < 0.5:
        crop = cv2.flip(crop, 1)
    if rng.random() < 0.5:
        crop = cv2.flip(crop, 0)
    mean = np.array(cv2.mean(crop)[:3], np.float32)
    mean = np.array([np.interp(m, np.arange(256), lut[:, c]) for c, m in enumerate(mean)], np.float32)
    lut = mean + (lut - mean) * rng.uniform(0.35, 0.75)
    lut = lut.clip(0, 255).round().astype(np.uint8).reshape(256, 1, 3)
    return cv2.LUT(crop, lut)


def _contrasting_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """A saturated RGB colour far from ``under`` (the mean colour the object covers)."""
    best, best_d = None, -1.0
    for _ in range(24):
        hsv = np.array([[[rng.integers(0, 180), rng.integers(150, 256), rng.integers(60, 256)]]], np.uint8)
        colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32)
        if rng.random() < 0.15:  # sometimes near-black or near-white
            colour = np.full(3, rng.choice([rng.uniform(0, 40), rng.uniform(215, 255)]), np.float32)
        d = float(np.linalg.norm(colour - under))
        if d > best_d:
            best, best_d = colour, d
        if d > 150:
            break
    return best


@dataclass
class Placed:
    category: int  # index into CATEGORY_NAMES
    mask: np.ndarray  # (h, w) bool, the drawn shape inside its box
    box: tuple[int, int, int, int]  # x, y, w, h: tight around the drawn mask, in image pixels

    @property
    def window(self) -> tuple[slice, slice]:
        x, y, w, h = self.box
        return slice(y, y + h), slice(x, x + w)


def warp_object(
    rng: np.random.Generator, category: int, side: float, height: int, width: int
) -> Placed | None:
    """Warp the template of ``category`` so its longer extent is about ``side`` pixels, at a random
    rotation/stretch/position fully inside the (height, width) image; None when it does not fit."""
    name = CATEGORY_NAMES[category]
    tpl = templates()[name]
    max_rot = _MAX_DIGIT_ROTATION if name in _DIGITS else 180.0
    theta = math.radians(rng.uniform(-max_rot, max_rot))
    stretch = math.exp(rng.uniform(-0.2, 0.2))
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    lin = rot @ np.diag([stretch, 1.0 / stretch])  # in units of the template's longer side
    pts = tpl.points @ lin.T
    lo, hi = pts.min(0), pts.max(0)
    scale = side / float((hi - lo).max())  # pixels per template unit
    lo, hi = lo * scale, hi * scale
    if hi[0] - lo[0] > width - 4 or hi[1] - lo[1] > height - 4:
        return None
    cx = rng.uniform(2 - lo[0], width - 2 - hi[0])
    cy = rng.uniform(2 - lo[1], height - 2 - hi[1])
    level = 0
    while level + 1 < len(tpl.levels) and max(tpl.levels[level + 1].shape) >= scale:
        level += 1
    src = tpl.levels[level]
    h, w = src.shape
    a = lin * (scale / max(h, w))  # template pixels -> image pixels
    # pixel centres: dst + 0.5 = c + a (src + 0.5 - (w/2, h/2)), in a window starting at (wx, wy)
    wx = max(0, int(math.floor(cx + lo[0])) - 2)
    wy = max(0, int(math.floor(cy + lo[1])) - 2)
    ww = min(width, int(math.ceil(cx + hi[0])) + 3) - wx
    wh = min(height, int(math.ceil(cy + hi[1])) + 3) - wy
    t = np.array([cx - wx, cy - wy]) - a @ np.array([w / 2, h / 2]) + a @ np.array([0.5, 0.5]) - 0.5
    m = np.hstack([a, t[:, None]])
    warped = cv2.warpAffine(src, m, (ww, wh), flags=cv2.INTER_LINEAR, borderValue=0)
    mask = (warped >= 0.5).astype(np.uint8)
    x, y, bw, bh = cv2.boundingRect(mask)
    if bw < 2 or bh < 2:
        return None
    return Placed(category, mask[y : y + bh, x : x + bw].astype(bool), (wx + x, wy + y, bw, bh))


def _paint(rng: np.random.Generator, image: np.ndarray, obj: Placed) -> None:
    """Fill ``obj``'s mask in ``image`` (uint8, in place) with a contrasting colour, a soft gradient and
    a little noise."""
    patch = image[obj.window]
    under = patch[obj.mask].astype(np.float32).mean(0)
    colour = _contrasting_colour(rng, under)
    ys, xs = np.nonzero(obj.mask)
    shade = rng.uniform(-25, 25, 2).astype(np.float32)
    grad = shade[0] * xs / obj.box[2] + shade[1] * ys / obj.box[3]
    pixels = colour + grad[:, None] + rng.normal(0, 4, (len(ys), 3)).astype(np.float32)
    patch[ys, xs] = pixels.clip(0, 255).astype(np.uint8)


def render_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    num_objects: int,
    min_scale: float,
    max_scale: float,
    max_occlusion: float = 0.5,
    max_tries: int = 20,
) -> tuple[np.ndarray, list[Placed]]:
    """An (H, W, 3) uint8 RGB image with up to ``num_objects`` objects (longer extent ``min_scale..max_scale``
    of the shorter image side, log-uniform) and the annotated objects, in drawing order."""
    image = random_background(rng, height, width)
    owner = np.full((height, width), -1, np.int32)  # index of the object visible at each pixel
    placed: list[Placed] = []
    short = min(height, width)
    for _ in range(num_objects):
        category = int(rng.integers(len(CATEGORY_NAMES)))
        side = short * math.exp(rng.uniform(math.log(min_scale), math.log(max_scale)))
        for _try in range(max_tries):
            obj = warp_object(rng, category, side, height, width)
            if obj is None:
                side *= 0.8
                continue
            covered = owner[obj.window][obj.mask]
            hit, count = np.unique(covered[covered >= 0], return_counts=True)
            if all(_visible(owner, placed[j], j) - c >= (1 - max_occlusion) * placed[j].mask.sum()
                   for j, c in zip(hit, count)):  # fmt: skip
                break
        else:
            continue
        _paint(rng, image, obj)
        owner[obj.window][obj.mask] = len(placed)
        placed.append(obj)
    visible = [p for j, p in enumerate(placed) if _visible(owner, p, j) >= (1 - max_occlusion) * p.mask.sum()]
    return image, visible


def _visible(owner: np.ndarray, obj: Placed, index: int) -> int:
    """Pixels of ``obj`` (the object number ``index`` in ``owner``) that are still visible."""
    return int(np.count_nonzero(owner[obj.window][obj.mask] == index))


def render_centred(rng: np.random.Generator, category: int, size: int) -> np.ndarray:
    """A (size, size, 3) uint8 RGB classification image: one object of ``category`` near the centre."""
    image = random_background(rng, size, size)
    side = size * rng.uniform(0.5, 0.85)
    obj = None
    while obj is None:
        obj = warp_object(rng, category, side, size, size)
        side *= 0.9
    x, y, w, h = obj.box
    jitter = rng.uniform(-0.08, 0.08, 2) * size
    x = int(np.clip(round((size - w) / 2 + jitter[0]), 0, size - w))
    y = int(np.clip(round((size - h) / 2 + jitter[1]), 0, size - h))
    _paint(rng, image, Placed(category, obj.mask, (x, y, w, h)))
    return image
