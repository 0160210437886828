"""Hierarchical grouping on hand-made label images."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from rcnn.proposals.features import PixelCodes
from rcnn.proposals.grouping import (
    adjacent_pairs,
    fill_similarity,
    hierarchical_grouping,
    initial_regions,
    size_similarity,
)
from rcnn.proposals.selective_search import segment


def quadrants(height: int = 4, width: int = 6) -> np.ndarray:
    """Labels 0 1 / 2 3 in a 2x2 layout."""
    labels = np.zeros((height, width), dtype=np.int64)
    labels[: height // 2, width // 2 :] = 1
    labels[height // 2 :, : width // 2] = 2
    labels[height // 2 :, width // 2 :] = 3
    return labels


def test_adjacency_of_a_2x2_layout_has_no_diagonals():
    pairs = adjacent_pairs(quadrants())
    assert pairs.tolist() == [[0, 1], [0, 2], [1, 3], [2, 3]]


def test_adjacency_of_nested_and_separated_regions():
    labels = np.zeros((7, 7), dtype=np.int64)
    labels[2:5, 2:5] = 1  # island inside 0
    labels[:, 6] = 2  # strip on the right, touching 0 only
    assert adjacent_pairs(labels).tolist() == [[0, 1], [0, 2]]


def test_initial_regions_sizes_and_exclusive_end_boxes():
    regions = initial_regions(quadrants(4, 6))
    assert regions.sizes.tolist() == [6, 6, 6, 6]
    assert regions.boxes.tolist() == [[0, 0, 3, 2], [3, 0, 6, 2], [0, 2, 3, 4], [3, 2, 6, 4]]


def test_initial_regions_rejects_missing_labels():
    labels = quadrants()
    labels[labels == 1] = 0
    with pytest.raises(ValueError, match="every label"):
        initial_regions(labels)


def test_size_similarity_by_hand():
    assert size_similarity(10, 30, 100) == pytest.approx(0.6)
    np.testing.assert_allclose(size_similarity(np.array([1, 50]), np.array([1, 50]), 100), [0.98, 0.0])


def test_fill_similarity_by_hand():
    # Two 2x2 squares side by side fill their 4x2 box exactly; diagonal ones leave half of a 4x4 box empty.
    a, b, c = np.array([0, 0, 2, 2]), np.array([2, 0, 4, 2]), np.array([2, 2, 4, 4])
    assert fill_similarity(a, b, 4, 4, 16) == pytest.approx(1.0)
    assert fill_similarity(a, c, 4, 4, 16) == pytest.approx(1.0 - 8 / 16)
    both = fill_similarity(a, np.stack([b, c]), 4, np.array([4, 4]), 16)
    np.testing.assert_allclose(both, [1.0, 0.5])


def test_merging_follows_histogram_similarity():
    regions = initial_regions(quadrants())
    # 0 and 1 are identical, 2 resembles 0/1 a little, 3 resembles 2 most.
    feats = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.3, 0.7, 0.0], [0.0, 0.6, 0.4]], dtype=np.float32)
    h = hierarchical_grouping(regions, feats, 24)
    assert h.merges.tolist() == [[0, 1], [2, 3], [4, 5]]
    assert h.boxes[4].tolist() == [0, 0, 6, 2]
    assert h.boxes[5].tolist() == [0, 2, 6, 4]
    assert h.boxes[-1].tolist() == [0, 0, 6, 4]


def test_size_similarity_merges_small_regions_first():
    labels = np.zeros((4, 8), dtype=np.int64)
    labels[:, 2:3] = 1  # 4 px strip
    labels[:, 3:4] = 2  # 4 px strip
    labels[:, 4:] = 3  # 16 px
    regions = initial_regions(labels)  # sizes 8, 4, 4, 16; chain 0-1-2-3
    h = hierarchical_grouping(regions, None, labels.size, size_weight=1.0)
    assert h.merges[0].tolist() == [1, 2]
    assert h.merges[1].tolist() == [0, 4]  # 8 + 8 beats 8 + 16
    assert h.merges[2].tolist() == [3, 5]


def test_fill_similarity_prefers_regions_that_fit_together():
    labels = np.array([[0, 0, 2, 2], [0, 1, 2, 2], [3, 3, 3, 3], [3, 3, 3, 3]])
    regions = initial_regions(labels)
    h = hierarchical_grouping(regions, None, labels.size, fill_weight=1.0)
    # The L-shape 0 and its missing corner 1 fill their box exactly; then the 2x2 square they form and
    # region 2 fill the top half; the bottom half comes last.
    assert h.merges.tolist() == [[0, 1], [2, 4], [3, 5]]
    assert h.boxes[4:].tolist() == [[0, 0, 2, 2], [0, 0, 4, 2], [0, 0, 4, 4]]


@pytest.fixture(scope="module")
def small_segmentation():
    image = np.ascontiguousarray(data.astronaut()[::6, ::6])  # 86 x 86
    labels = segment(image, k=30, sigma=0.8, min_size=10)
    return image, labels


def test_grouping_ends_with_one_region_covering_the_image(small_segmentation):
    image, labels = small_segmentation
    regions = initial_regions(labels)
    n = regions.num_regions
    assert n > 10
    codes = PixelCodes(image)
    colour, texture = codes.region_histograms(labels, n)
    h = hierarchical_grouping(
        regions, np.concatenate([colour, texture], 1), labels.size, size_weight=1, fill_weight=1
    )
    assert h.merges.shape == (n - 1, 2)
    assert h.boxes.shape == (2 * n - 1, 4)
    assert h.boxes[-1].tolist() == [0, 0, labels.shape[1], labels.shape[0]]
    # Each region is merged exactly once, only after it exists.
    flat = h.merges.reshape(-1)
    assert sorted(flat.tolist()) == list(range(2 * n - 2))
    for step, (a, b) in enumerate(h.merges.tolist()):
        assert a < n + step and b < n + step


def test_merged_histograms_equal_histograms_of_the_union(small_segmentation):
    image, labels = small_segmentation
    regions = initial_regions(labels)
    n = regions.num_regions
    codes = PixelCodes(image)
    colour, texture = codes.region_histograms(labels, n)
    h = hierarchical_grouping(regions, np.concatenate([colour, texture], 1), labels.size, size_weight=1)
    members = {i: [i] for i in range(n)}
    for step, (a, b) in enumerate(h.merges.tolist()):
        members[n + step] = members[a] + members[b]
    for t in (n, n + (n - 1) // 2, 2 * n - 2):
        union = np.isin(labels, members[t]).astype(np.int64)  # 1 inside the merged region
        c_ref, t_ref = codes.region_histograms(union, 2)
        np.testing.assert_allclose(h.features[t], np.concatenate([c_ref[1], t_ref[1]]), atol=1e-5)
        rows, cols = np.nonzero(union)
        assert h.boxes[t].tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
