"""Felzenszwalb segmentation with a shared graph: exactly scikit-image's labels, and selective search's
proposals unchanged from when scikit-image did the segmentation."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from scipy import ndimage
from skimage import data
from skimage.segmentation import felzenszwalb as skimage_felzenszwalb
from skimage.util import img_as_float64

from rcnn.data.synthetic_render import render_scene
from rcnn.proposals.colorspaces import convert_color
from rcnn.proposals.features import PixelCodes
from rcnn.proposals.felzenszwalb import FelzenszwalbGraph, felzenszwalb

# The module (the package exports the function of the same name).
ss = importlib.import_module("rcnn.proposals.selective_search")


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    scene, _ = render_scene(np.random.default_rng(1), 48, 64, num_objects=3, min_scale=0.3, max_scale=0.6)
    astronaut = np.ascontiguousarray(data.astronaut()[100:160:2, 150:250:2])  # 30 x 50
    return {
        "noise": rng.integers(0, 256, (23, 31, 3), dtype=np.uint8),
        "synthetic": scene,  # 48 x 64, flat areas: many tied costs
        "astronaut_lab": convert_color(astronaut, "lab"),
        "astronaut_h": convert_color(astronaut, "h"),  # (H, W, 1)
        "camera": np.ascontiguousarray(data.camera()[200:240, 180:250]),  # (H, W) grey
        "posterised": (np.ascontiguousarray(data.coffee()[80:150:2, 100:220:3]) // 64 * 64).astype(np.uint8),
        "row": rng.integers(0, 256, (1, 17, 3), dtype=np.uint8),
        "column": rng.integers(0, 256, (13, 1), dtype=np.uint8),
    }


IMAGES = _images()


def _channel_axis(image: np.ndarray) -> int | None:
    return None if image.ndim == 2 else -1


@pytest.mark.parametrize("name", list(IMAGES))
def test_labels_identical_to_skimage(name):
    image = IMAGES[name]
    for sigma in (0.0, 0.8, 1.5):
        graph = FelzenszwalbGraph(image, sigma, channel_axis=_channel_axis(image))
        for k in (1, 30, 150, 450):  # one graph, several scales
            for min_size in (0, 5, 40):
                want = skimage_felzenszwalb(
                    image, scale=k, sigma=sigma, min_size=min_size, channel_axis=_channel_axis(image)
                )
                got = graph.segment(k, min_size)
                assert got.dtype == want.dtype and got.shape == want.shape == image.shape[:2]
                # Same partition and same numbering (components in raster order of their first pixel).
                assert np.array_equal(got, want), (name, sigma, k, min_size)


def test_drop_in_function_and_channel_axis():
    image = IMAGES["noise"]
    want = skimage_felzenszwalb(image, scale=50, sigma=0.5, min_size=4)
    np.testing.assert_array_equal(felzenszwalb(image, scale=50, sigma=0.5, min_size=4), want)
    moved = np.ascontiguousarray(np.moveaxis(image, -1, 0))
    np.testing.assert_array_equal(felzenszwalb(moved, 50, 0.5, 4, channel_axis=0), want)
    grey = IMAGES["camera"]
    np.testing.assert_array_equal(
        felzenszwalb(grey, 80, 0.8, 10, channel_axis=None),
        skimage_felzenszwalb(grey, scale=80, sigma=0.8, min_size=10, channel_axis=None),
    )
    with pytest.raises(ValueError):
        FelzenszwalbGraph(image, channel_axis=None)


def test_many_channels_use_numpys_pairwise_sum():
    image = np.random.default_rng(2).integers(0, 256, (19, 21, 9), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-image warns about > 3 channels
        want = skimage_felzenszwalb(image, scale=200, sigma=0.8, min_size=5)
    np.testing.assert_array_equal(felzenszwalb(image, 200, 0.8, 5), want)


def test_costs_bitwise_equal_to_skimages_formula():
    image = img_as_float64(IMAGES["astronaut_lab"])
    smooth = ndimage.gaussian_filter(image, sigma=[0.8, 0.8, 0], mode="reflect", cval=0, truncate=4.0)
    h, w = smooth.shape[:2]

    def dist(a, b):
        return np.sqrt(np.sum((a - b) * (a - b), axis=-1)).ravel()

    costs = np.hstack(
        [
            dist(smooth[:, 1:], smooth[:, : w - 1]),
            dist(smooth[1:, :], smooth[: h - 1, :]),
            dist(smooth[1:, 1:], smooth[: h - 1, : w - 1]),
            dist(smooth[1:, : w - 1], smooth[: h - 1, 1:]),
        ]
    )
    graph = FelzenszwalbGraph(IMAGES["astronaut_lab"], 0.8)
    assert graph.num_edges == costs.size == 4 * h * w - 3 * (h + w) + 2
    order = np.argsort(costs)
    assert np.array_equal(graph.costs.view(np.int64), costs[order].view(np.int64))
    # The edge ends of the sorted edges, as scikit-image builds them.
    ids = np.arange(h * w).reshape(h, w)
    pairs = np.vstack(
        [
            np.c_[ids[:, 1:].ravel(), ids[:, : w - 1].ravel()],
            np.c_[ids[1:, :].ravel(), ids[: h - 1, :].ravel()],
            np.c_[ids[1:, 1:].ravel(), ids[: h - 1, : w - 1].ravel()],
            np.c_[ids[: h - 1, 1:].ravel(), ids[1:, : w - 1].ravel()],
        ]
    )[order]
    np.testing.assert_array_equal(graph.edge_a, pairs[:, 0])
    np.testing.assert_array_equal(graph.edge_b, pairs[:, 1])


def test_segment_takes_a_graph_or_an_image():
    image = IMAGES["synthetic"]
    graph = FelzenszwalbGraph(image, 0.8)
    np.testing.assert_array_equal(ss.segment(graph, 100, 0.8, "k"), ss.segment(image, 100))
    np.testing.assert_array_equal(
        ss.segment(image, 100, 0.8, 20), skimage_felzenszwalb(image, scale=100, sigma=0.8, min_size=20)
    )
    with pytest.raises(ValueError, match="sigma"):
        ss.segment(graph, 100, sigma=0.5)


def _run_color_space_with_skimage(image, space, k_values, similarities, sigma, segment_min_size):
    """The colour-space step as it was when scikit-image segmented every (colour space, k) separately."""
    converted = convert_color(image, space)
    codes = PixelCodes(converted)
    out = []
    for k in k_values:
        min_size = int(k) if segment_min_size in (None, "k") else int(segment_min_size)
        img = converted[:, :, 0] if converted.shape[2] == 1 else converted
        labels = skimage_felzenszwalb(
            img, scale=float(k), sigma=sigma, min_size=min_size, channel_axis=None if img.ndim == 2 else -1
        )
        out.extend(h.boxes for h in ss.group_segmentation(codes, labels, similarities))
    return out


@pytest.mark.parametrize("mode", ["fast", "quality"])
def test_selective_search_unchanged(monkeypatch, mode):
    image = np.ascontiguousarray(data.chelsea()[::3, ::3])  # 100 x 151; "quality" has the 1-channel h, i
    got = ss.selective_search(image, mode)
    monkeypatch.setattr(ss, "_run_color_space", _run_color_space_with_skimage)
    want = ss.selective_search(image, mode)
    assert len(got) > 50
    np.testing.assert_array_equal(got, want)
