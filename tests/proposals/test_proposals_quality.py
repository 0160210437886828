"""Recall against IoU and proposal counts, average recall and the split-level proposal quality, on
hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from rcnn.proposals.quality import proposal_quality
from rcnn.proposals.recall import AR_IOUS, average_recall, best_overlaps, best_overlaps_at, recall_curve

GT = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=np.float64)
# ranked: a miss, then the first box shifted by 1 px in x (IoU 90/110), then the second box exactly
PROPOSALS = np.array([[50, 50, 60, 60], [1, 0, 11, 10], [20, 20, 30, 30]], dtype=np.float64)


def test_best_overlaps_at_counts_only_the_best_ranked():
    got = best_overlaps_at(PROPOSALS, GT, [1, 2, 3, 10])
    expected = np.array([[0.0, 90 / 110, 90 / 110, 90 / 110], [0.0, 0.0, 1.0, 1.0]])
    np.testing.assert_allclose(got, expected)
    np.testing.assert_allclose(got[:, -1], best_overlaps(PROPOSALS, GT))  # all of them
    assert best_overlaps_at(np.zeros((0, 4)), GT, [5]).tolist() == [[0.0], [0.0]]
    assert best_overlaps_at(PROPOSALS, np.zeros((0, 4)), [5]).shape == (0, 1)


def test_average_recall_is_recall_averaged_over_iou_half_to_095():
    best = np.array([90 / 110, 1.0])  # 0.818...: recalled at 0.5..0.8 (7 thresholds), missed at 0.85..0.95
    assert AR_IOUS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
    np.testing.assert_allclose(recall_curve(best, [0.5, 0.8, 0.85, 1.0]), [1.0, 1.0, 0.5, 0.5])
    assert average_recall(best) == pytest.approx((7 * 1.0 + 3 * 0.5) / 10)
    assert np.isnan(average_recall(np.zeros(0)))


def test_proposal_quality_of_two_images():
    # image 2: one object of class 2, one proposal of IoU 0.5 (25/50) with it
    gts = [GT, np.array([[0, 0, 10, 10]], dtype=np.float64)]
    props = [PROPOSALS, np.array([[0, 0, 10, 5]], dtype=np.float64)]
    labels = [np.array([1, 1]), np.array([2])]
    q = proposal_quality(props, gts, labels, counts=(1, 2))
    assert q["num_images"] == 2 and q["num_gt_boxes"] == 3 and q["boxes_per_image_max"] == 3
    assert q["boxes_per_image_mean"] == pytest.approx(2.0)
    # the best one of each image: image 1 recalls nothing, image 2 its object at exactly 0.5
    assert q["top_n"]["1"]["recall@0.5"] == pytest.approx(1 / 3)
    assert q["top_n"]["1"]["recall@0.7"] == 0.0
    assert q["top_n"]["2"]["recall@0.7"] == pytest.approx(1 / 3)
    # all: overlaps 0.818, 1.0, 0.5; MABO per class: class 1 (0.818 + 1) / 2, class 2 0.5
    assert q["all"]["recall@0.5"] == 1.0 and q["all"]["recall@0.7"] == pytest.approx(2 / 3)
    assert q["all"]["mabo"] == pytest.approx(((90 / 110 + 1.0) / 2 + 0.5) / 2)
    assert q["all"]["AR"] == pytest.approx((7 + 10 + 1) / 30)
    curve = q["recall_vs_iou"]
    assert curve["iou"][0] == 0.5 and curve["iou"][-1] == 1.0
    assert curve["all"][0] == 1.0 and curve["all"][-1] == pytest.approx(1 / 3)  # the exact box only
    by_count = q["recall_vs_proposals"]
    assert by_count["proposals"] == [1, 2, 3]
    np.testing.assert_allclose(by_count["recall@0.5"], [1 / 3, 2 / 3, 1.0])


def test_proposal_quality_without_ground_truth_gives_none():
    q = proposal_quality([PROPOSALS], [np.zeros((0, 4))], [np.zeros(0, np.int64)])
    assert q["num_gt_boxes"] == 0
    assert q["all"] == {"recall@0.5": None, "recall@0.7": None, "AR": None, "mabo": None}
