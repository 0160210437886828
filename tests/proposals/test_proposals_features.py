"""Colour spaces, colour / texture histograms and histogram intersection."""

from __future__ import annotations

import numpy as np
import pytest

from rcnn.proposals.colorspaces import COLOR_SPACES, convert_color
from rcnn.proposals.features import (
    COLOR_BINS,
    ORIENTATIONS,
    TEXTURE_BINS,
    PixelCodes,
    color_codes,
    histogram_intersection,
)


@pytest.mark.parametrize("space", COLOR_SPACES)
def test_color_space_shapes_and_full_range(space):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    out = convert_color(image, space)
    channels = 1 if space in ("h", "i") else 3
    assert out.shape == (32, 40, channels) and out.dtype == np.uint8
    # Random colours use most of every channel's 0..255 range.
    assert (out.reshape(-1, channels).max(0).astype(int) - out.reshape(-1, channels).min(0) > 100).all()


def test_color_space_values_by_hand():
    pixels = np.array([[[255, 0, 0], [255, 255, 255], [0, 0, 0], [100, 100, 100]]], dtype=np.uint8)
    hsv = convert_color(pixels, "hsv")
    assert hsv[0, 0].tolist() == [0, 255, 255]  # pure red
    assert hsv[0, 1, 1:].tolist() == [0, 255]  # white: no saturation, full value
    lab = convert_color(pixels, "lab").astype(int)
    assert lab[0, 1, 0] == 255 and abs(lab[0, 1, 1] - 128) <= 1 and abs(lab[0, 1, 2] - 128) <= 1
    assert lab[0, 2].tolist() == [0, 128, 128]
    rgi = convert_color(pixels, "rgi")
    assert rgi[0, 0].tolist() == [255, 0, 85]
    assert rgi[0, 2].tolist() == [85, 85, 0]  # black: neutral chromaticity
    assert rgi[0, 3].tolist() == [85, 85, 100]
    assert convert_color(pixels, "i")[0, :, 0].tolist() == [76, 255, 0, 100]
    assert convert_color(pixels, "h")[0, 0, 0] == 0


def test_color_space_rejects_bad_input():
    with pytest.raises(ValueError):
        convert_color(np.zeros((4, 4), np.uint8), "hsv")
    with pytest.raises(ValueError):
        convert_color(np.zeros((4, 4, 3), np.float32), "hsv")
    with pytest.raises(ValueError, match="unknown"):
        convert_color(np.zeros((4, 4, 3), np.uint8), "xyz")


def test_color_codes_are_25_equal_bins():
    image = np.array([[[0, 10, 11], [255, 128, 245]]], dtype=np.uint8)
    codes = color_codes(image, offset=100)
    # Bin width 256 / 25 = 10.24: 10 -> 0, 11 -> 1, 128 -> 12, 245 -> 23, 255 -> 24; channel c adds 25 c.
    assert codes[:, 0].tolist() == [100 + 0, 100 + 25 + 0, 100 + 50 + 1]
    assert codes[:, 1].tolist() == [100 + 24, 100 + 25 + 12, 100 + 50 + 23]


def test_histograms_are_l1_normalised_with_the_paper_dimensions():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(4), 144).reshape(24, 24)
    colour, texture = PixelCodes(image).region_histograms(labels, 4)
    assert colour.shape == (4, 3 * COLOR_BINS) and texture.shape == (4, 3 * ORIENTATIONS * TEXTURE_BINS)
    np.testing.assert_allclose(colour.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(texture.sum(1), 1.0, rtol=1e-6)
    # Every orientation of every channel holds the same mass (each pixel counts once in each).
    per_orientation = texture.reshape(4, 3 * ORIENTATIONS, TEXTURE_BINS).sum(-1)
    np.testing.assert_allclose(per_orientation, 1.0 / (3 * ORIENTATIONS), rtol=1e-5)


def test_colour_histogram_of_a_flat_region():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 0, 128, 255
    colour, _ = PixelCodes(image).region_histograms(np.zeros((8, 8), np.int64), 1)
    expected = np.zeros(75)
    expected[[0, 25 + 12, 50 + 24]] = 1 / 3
    np.testing.assert_allclose(colour[0], expected, rtol=1e-6)


def test_texture_of_a_vertical_step_edge_points_along_x():
    image = np.zeros((16, 16, 1), dtype=np.uint8)
    image[:, 8:] = 200  # dark -> bright along +x
    _, texture = PixelCodes(image).region_histograms(np.zeros((16, 16), np.int64), 1)
    hist = texture[0].reshape(ORIENTATIONS, TEXTURE_BINS)
    # Orientation 0 (+x) sees the strongest responses, 180 degrees (-x) none, 90/270 (y) none.
    assert hist[0, 9] > 0
    assert hist[4, 1:].sum() == 0 and hist[2, 1:].sum() == 0 and hist[6, 1:].sum() == 0
    # The diagonals see the edge at cos 45 = 0.71 of the peak: bin 7, never bin 9.
    assert hist[1, 7] > 0 and hist[1, 8:].sum() == 0 and hist[7, 7] > 0
    assert hist[3, 1:].sum() == 0 and hist[5, 1:].sum() == 0


def test_flat_image_has_all_texture_in_bin_zero():
    image = np.full((8, 8, 3), 77, dtype=np.uint8)
    _, texture = PixelCodes(image).region_histograms(np.zeros((8, 8), np.int64), 1)
    hist = texture[0].reshape(3 * ORIENTATIONS, TEXTURE_BINS)
    np.testing.assert_allclose(hist[:, 0], 1 / 24, rtol=1e-6)
    assert hist[:, 1:].sum() == 0


def test_histogram_intersection_by_hand():
    h = np.array([0.5, 0.3, 0.2])
    others = np.array([[0.5, 0.3, 0.2], [0.0, 0.0, 1.0], [0.2, 0.2, 0.6]])
    np.testing.assert_allclose(histogram_intersection(h, others), [1.0, 0.2, 0.6])
