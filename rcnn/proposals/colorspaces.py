"""Colour spaces of selective search (Uijlings et al., IJCV 2013, section 3.2, Table 1).

Every conversion takes an ``(H, W, 3) uint8`` RGB image and returns an ``(H, W, C) uint8`` image whose
channels all span ``0..255``: the same units for the graph segmentation's scale ``k`` (which is relative to
``0..255`` differences) and for the fixed-range colour histograms.

| name  | channels | definition                                                                         |
|-------|----------|------------------------------------------------------------------------------------|
| rgb   | 3        | the input                                                                          |
| hsv   | 3        | hue (full circle mapped to 0..255), saturation, value                              |
| lab   | 3        | CIE L*a*b* (D65): L * 255 / 100, a + 128, b + 128                                   |
| rgi   | 3        | normalised r = R / (R+G+B), g = G / (R+G+B) (times 255), intensity I = (R+G+B) / 3 |
| h     | 1        | the hue channel of ``hsv``                                                         |
| i     | 1        | intensity (luma, ITU-R BT.601 weights)                                             |
"""

from __future__ import annotations

import cv2
import numpy as np

COLOR_SPACES: tuple[str, ...] = ("rgb", "hsv", "lab", "rgi", "h", "i")
"""Names accepted by :func:`convert_color`."""


def _check_rgb(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    return np.ascontiguousarray(image)


def rgb_to_rgi(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) uint8 normalised r, g and intensity, each in 0..255.

    Black pixels (R + G + B = 0) get the neutral chromaticity r = g = 1/3.
    """
    rgb = _check_rgb(image).astype(np.float32)
    total = rgb.sum(axis=2)
    safe = np.where(total > 0, total, 1.0)
    r = np.where(total > 0, rgb[..., 0] / safe, 1.0 / 3.0)
    g = np.where(total > 0, rgb[..., 1] / safe, 1.0 / 3.0)
    out = np.stack([r * 255.0, g * 255.0, total / 3.0], axis=2)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def convert_color(image: np.ndarray, space: str) -> np.ndarray:
    """Convert an (H, W, 3) uint8 RGB image to colour space ``space`` (see the module table).

    Returns ``(H, W, C) uint8`` with C = 3, or C = 1 for ``h`` and ``i``.
    """
    rgb = _check_rgb(image)
    space = space.lower()
    if space == "rgb":
        return rgb.copy()
    if space == "hsv":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)
    if space == "lab":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    if space == "rgi":
        return rgb_to_rgi(rgb)
    if space == "h":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)[..., :1].copy()
    if space == "i":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None]
    raise ValueError(f"unknown colour space {space!r}; expected one of {COLOR_SPACES}")
