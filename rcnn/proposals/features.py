"""Region descriptors of selective search: colour and texture histograms (Uijlings et al., section 3.2).

Both are computed once per pixel as *bin codes* (the index of the histogram bin each pixel falls into, one
code per channel or per channel and orientation) and turned into per-region histograms with one
``np.bincount`` over ``label * dim + code``. Merged regions never revisit pixels: their histograms are the
size-weighted average of the children's (exact, because every region's histogram is L1-normalised and its
mass is proportional to its pixel count).

- Colour: 25 bins per channel over ``0..255``; ``(N, 25 * C)``, L1-normalised over all channels together.
- Texture: Gaussian derivatives with sigma = 1 steered to 8 orientations (0, 45, ..., 315 degrees; a
  response is kept where it is positive, so opposite orientations split the sign) per channel, each
  quantised to 10 bins over ``[0, max]`` where ``max`` is the channel's largest response in the image;
  ``(N, 10 * 8 * C)``, L1-normalised over all channels and orientations together. Opposite orientations
  share one signed code per pixel (a response is positive in one and zero in the other), which halves the
  counting work; :func:`expand_texture` recovers the 8 orientation histograms from the signed ones.
"""

from __future__ import annotations

import cv2
import numpy as np

COLOR_BINS = 25
TEXTURE_BINS = 10
ORIENTATIONS = 8


def color_codes(image: np.ndarray, bins: int = COLOR_BINS, offset: int = 0) -> np.ndarray:
    """Colour-histogram bin of every pixel.

    image: (H, W, C) uint8. Returns (C, H*W) int32 codes ``offset + c * bins + bin``, bin in ``0..bins-1``.
    """
    height, width, channels = image.shape
    flat = image.reshape(height * width, channels).T.astype(np.int32)  # (C, HW)
    codes = (flat * bins) >> 8  # floor(v * bins / 256)
    codes += (offset + np.arange(channels, dtype=np.int32) * bins)[:, None]
    return codes


def gaussian_derivatives(channel: np.ndarray, sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) image -> (d/dx, d/dy), each (H, W) float32: derivatives of the image smoothed by a Gaussian."""
    radius = max(1, int(np.ceil(4.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    gauss = np.exp(-0.5 * (x / sigma) ** 2)
    gauss /= gauss.sum()
    deriv = x / sigma**2 * gauss  # correlation kernel of d/dx (sepFilter2D does not flip kernels)
    src = np.ascontiguousarray(channel, dtype=np.float32)
    border = cv2.BORDER_REFLECT_101
    dx = cv2.sepFilter2D(
        src, cv2.CV_32F, deriv.astype(np.float32), gauss.astype(np.float32), borderType=border
    )
    dy = cv2.sepFilter2D(
        src, cv2.CV_32F, gauss.astype(np.float32), deriv.astype(np.float32), borderType=border
    )
    return dx, dy


SIGNED_TEXTURE_VALUES = 2 * TEXTURE_BINS - 1
"""A pixel's response along one axis (0, 45, 90 or 135 degrees) has a positive part (that orientation) or a
negative part (the opposite one), never both: one signed code of ``2 * bins - 1`` values covers the pair."""


def texture_codes(
    image: np.ndarray, sigma: float = 1.0, bins: int = TEXTURE_BINS, offset: int = 0
) -> np.ndarray:
    """Signed texture bin of every pixel for each channel and axis.

    image: (H, W, C) uint8. Returns (4 * C, H*W) int32 codes ``offset + (c * 4 + a) * (2 * bins - 1) + q +
    bins - 1`` where q in ``-(bins-1)..bins-1`` is the response along axis a (angle a * 45 degrees, x to the
    right, y down) quantised to ``bins`` levels of ``[0, max]`` by magnitude. :func:`expand_texture`
    turns histograms of these codes into the 8-orientation histograms.
    """
    height, width, channels = image.shape
    half = ORIENTATIONS // 2
    values = 2 * bins - 1
    angles = np.arange(half) * (2.0 * np.pi / ORIENTATIONS)
    cos, sin = np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
    codes = np.empty((half * channels, height * width), dtype=np.int32)
    for c in range(channels):
        dx, dy = gaussian_derivatives(image[:, :, c], sigma)
        steered = cos[:, None] * dx.reshape(1, -1) + sin[:, None] * dy.reshape(1, -1)  # (4, HW)
        peak = float(np.abs(steered).max())
        scale = bins / peak if peak > 1e-3 else 0.0  # flat channel: rounding noise only, all in bin 0
        rows = codes[c * half : (c + 1) * half]
        # Truncation towards zero quantises |v| by floor on both signs.
        np.clip((steered * scale).astype(np.int32), -(bins - 1), bins - 1, out=rows)
        rows += (offset + bins - 1 + (c * half + np.arange(half, dtype=np.int32)) * values)[:, None]
    return codes


def expand_texture(counts: np.ndarray, channels: int, bins: int = TEXTURE_BINS) -> np.ndarray:
    """Signed-code counts (N, 4 * C * (2 * bins - 1)) -> orientation histograms (N, C * 8 * bins).

    Column ``(c * 8 + o) * bins + b`` counts pixels of channel c whose response in orientation o (o * 45
    degrees; o >= 4 are the negatives of o - 4) falls in bin b; every pixel counts once per orientation.
    """
    n = counts.shape[0]
    half = ORIENTATIONS // 2
    signed = counts.reshape(n, channels, half, 2 * bins - 1)
    zero = bins - 1
    out = np.empty((n, channels, 2, half, bins), dtype=counts.dtype)
    out[:, :, 0, :, 1:] = signed[..., zero + 1 :]
    out[:, :, 0, :, 0] = signed[..., : zero + 1].sum(axis=-1)
    out[:, :, 1, :, 1:] = signed[..., zero - 1 :: -1]
    out[:, :, 1, :, 0] = signed[..., zero:].sum(axis=-1)
    return out.reshape(n, channels * ORIENTATIONS * bins)


class PixelCodes:
    """Per-pixel colour and texture bin codes of one colour-space image, reused for every segmentation.

    ``codes`` (C + 4C, H*W) int32: colour codes in ``0..color_dim-1``, then signed texture codes (see
    :func:`texture_codes`) up to ``code_dim - 1``.
    """

    def __init__(self, image: np.ndarray, texture_sigma: float = 1.0) -> None:
        if image.ndim != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, C) uint8 image, got {image.shape} {image.dtype}")
        self.channels = image.shape[2]
        self.color_dim = COLOR_BINS * self.channels
        self.texture_dim = TEXTURE_BINS * ORIENTATIONS * self.channels
        self.code_dim = self.color_dim + SIGNED_TEXTURE_VALUES * (ORIENTATIONS // 2) * self.channels
        self.codes = np.concatenate(
            [color_codes(image), texture_codes(image, texture_sigma, offset=self.color_dim)], axis=0
        )

    def region_histograms(self, labels: np.ndarray, num_regions: int) -> tuple[np.ndarray, np.ndarray]:
        """labels: (H, W) ints in 0..N-1. Returns (colour (N, color_dim), texture (N, texture_dim)) float32,
        each row L1-normalised (rows of empty labels are zero)."""
        counts = region_counts(labels, num_regions, self.codes, self.code_dim)
        colour = _l1_normalise(counts[:, : self.color_dim])
        texture = _l1_normalise(expand_texture(counts[:, self.color_dim :], self.channels))
        return colour, texture


def region_counts(labels: np.ndarray, num_regions: int, codes: np.ndarray, dim: int) -> np.ndarray:
    """Histogram counts per region: labels (H, W) or (H*W,), codes (R, H*W) -> (N, dim) int64."""
    offsets = labels.reshape(-1).astype(np.int32) * np.int32(dim)
    total = num_regions * dim
    counts = np.zeros(total, dtype=np.int64)
    for row in codes:
        counts += np.bincount(row + offsets, minlength=total)
    return counts.reshape(num_regions, dim)


def _l1_normalise(counts: np.ndarray) -> np.ndarray:
    sums = counts.sum(axis=1, keepdims=True)
    return (counts / np.maximum(sums, 1)).astype(np.float32)


def histogram_intersection(hist: np.ndarray, others: np.ndarray) -> np.ndarray:
    """sum_k min(hist[k], others[j, k]) for every row j: hist (D,), others (K, D) -> (K,) float."""
    return np.minimum(others, hist).sum(axis=1)
