"""selective_search(): output contract, ranking, filtering and finding obvious objects."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from rcnn.proposals import PRESETS, Similarity, selective_search
from rcnn.proposals.recall import box_iou
from rcnn.proposals.selective_search import rank_boxes

RECTS = [(10, 20, 30, 40), (50, 5, 75, 15), (40, 45, 70, 60)]  # x1, y1, x2, y2 (exclusive)


@pytest.fixture(scope="module")
def rectangles() -> np.ndarray:
    """64 x 80 grey image with three flat coloured rectangles."""
    image = np.full((64, 80, 3), 200, dtype=np.uint8)
    for (x1, y1, x2, y2), colour in zip(RECTS, [(220, 30, 30), (20, 30, 200), (30, 160, 40)]):
        image[y1:y2, x1:x2] = colour
    return image


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.ascontiguousarray(data.chelsea()[::3, ::3])  # 100 x 151


def test_output_contract_and_exclusive_end_convention(rectangles):
    boxes = selective_search(rectangles, "single")
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
    # A region covering columns 10..29 and rows 20..39 is [10, 20, 30, 40]; the whole image [0, 0, W, H].
    assert [10, 20, 30, 40] in boxes.tolist()
    assert [0, 0, 80, 64] in boxes.tolist()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    assert boxes.min() >= 0 and (boxes[:, 2] <= 80).all() and (boxes[:, 3] <= 64).all()


@pytest.mark.parametrize("mode", ["single", "fast"])
def test_each_flat_rectangle_is_found(rectangles, mode):
    boxes = selective_search(rectangles, mode)
    best = box_iou(np.array(RECTS, dtype=np.float32), boxes).max(axis=1)
    assert (best > 0.9).all(), best


def test_same_seed_same_boxes_other_seed_other_order(photo):
    a = selective_search(photo, "single", seed=3)
    b = selective_search(photo, "single", seed=3)
    c = selective_search(photo, "single", seed=4)
    np.testing.assert_array_equal(a, b)
    assert len(a) > 30
    assert not np.array_equal(a, c)
    # Same set of boxes, only the ranking differs.
    assert sorted(map(tuple, a.tolist())) == sorted(map(tuple, c.tolist()))


def test_no_duplicate_boxes(photo):
    boxes = selective_search(photo, "fast", k_values=(50, 100))
    assert len(np.unique(boxes, axis=0)) == len(boxes)


def test_min_size_and_max_boxes(photo):
    full = selective_search(photo, "single")
    small = (full[:, 2] - full[:, 0] < 20) | (full[:, 3] - full[:, 1] < 20)
    assert small.any()
    filtered = selective_search(photo, "single", min_size=20)
    np.testing.assert_array_equal(filtered, full[~small])  # order preserved
    capped = selective_search(photo, "single", max_boxes=7)
    np.testing.assert_array_equal(capped, full[:7])


def test_resize_maps_boxes_back_to_input_pixels(rectangles):
    big = np.repeat(np.repeat(rectangles, 2, axis=0), 2, axis=1)  # 128 x 160
    boxes = selective_search(big, "single", resize_to=80, resize_side="longer")
    assert boxes[:, 2].max() == 160 and boxes[:, 3].max() == 128
    best = box_iou(np.array(RECTS, dtype=np.float32) * 2, boxes).max(axis=1)
    assert (best > 0.9).all(), best
    shorter = selective_search(big, "single", resize_to=64, resize_side="shorter")
    assert shorter[:, 3].max() == 128


def test_presets_are_the_documented_strategies():
    assert PRESETS["single"] == {
        "color_spaces": ("hsv",),
        "k_values": (100,),
        "similarities": ("CTSF",),
        "segment_min_size": "k",
    }
    assert PRESETS["fast"]["color_spaces"] == ("hsv", "lab")
    assert PRESETS["fast"]["k_values"] == (100, 200, 400)
    assert PRESETS["fast"]["similarities"] == ("CTSF", "TSF", "F")
    assert PRESETS["fast"]["segment_min_size"] == 100
    assert len(PRESETS["quality"]["color_spaces"]) == 5 and len(PRESETS["quality"]["similarities"]) == 4


def test_segment_min_size_controls_the_initial_regions(photo):
    # A larger minimum component size leaves fewer initial regions, hence fewer boxes.
    few = selective_search(photo, "single", segment_min_size=400)
    paper = selective_search(photo, "single")  # min size = k = 100
    many = selective_search(photo, "single", segment_min_size=10)
    assert len(few) < len(paper) < len(many)
    np.testing.assert_array_equal(paper, selective_search(photo, "single", segment_min_size="k"))


def test_similarity_parse():
    assert Similarity.parse("C+T+S+F") == Similarity(1, 1, 1, 1)
    assert Similarity.parse("tsf") == Similarity(0, 1, 1, 1)
    assert Similarity.parse("F") == Similarity(fill=1)
    for bad in ("", "CX", "CC"):
        with pytest.raises(ValueError):
            Similarity.parse(bad)


def test_bad_arguments(rectangles):
    with pytest.raises(ValueError, match="mode"):
        selective_search(rectangles, "slow")
    with pytest.raises(ValueError, match="colour space"):
        selective_search(rectangles, color_spaces=("xyz",))
    with pytest.raises(ValueError):
        selective_search(rectangles[..., 0], "single")
    with pytest.raises(ValueError):
        selective_search(rectangles.astype(np.float32), "single")


def test_rank_is_position_times_seeded_random_and_duplicates_keep_the_best():
    h1 = np.array([[0, 0, 1, 1], [1, 1, 2, 2], [0, 0, 2, 2]])  # positions 3, 2, 1
    h2 = np.array([[5, 5, 6, 6], [0, 0, 2, 2]])  # positions 2, 1
    out = rank_boxes([h1, h2], np.random.default_rng(7))
    u = np.random.default_rng(7).random(5)
    scores = np.array([3, 2, 1, 2, 1]) * u
    boxes = np.concatenate([h1, h2])
    expected, seen = [], set()
    for i in np.argsort(scores, kind="stable"):
        if tuple(boxes[i]) not in seen:
            seen.add(tuple(boxes[i]))
            expected.append(boxes[i].tolist())
    assert out.tolist() == expected
    assert len(out) == 4


def test_process_pool_gives_the_same_result(photo):
    a = selective_search(photo, "fast", k_values=(100,), n_jobs=1)
    b = selective_search(photo, "fast", k_values=(100,), n_jobs=2)
    np.testing.assert_array_equal(a, b)
