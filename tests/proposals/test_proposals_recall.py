"""Proposal recall and MABO on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rcnn.proposals.recall import best_overlaps, box_iou, mabo, proposal_recall


def test_box_iou_by_hand():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 50 / 150, 0.0, 0.0]])


def test_best_overlaps_and_chunking():
    gts = np.array([[0, 0, 10, 10], [100, 100, 110, 120]])
    props = np.array([[0, 0, 10, 20], [100, 100, 110, 110], [0, 0, 10, 10.0]])
    np.testing.assert_allclose(best_overlaps(props, gts), [1.0, 0.5])
    np.testing.assert_allclose(best_overlaps(props, gts, chunk=1), [1.0, 0.5])
    np.testing.assert_allclose(best_overlaps(np.zeros((0, 4)), gts), [0.0, 0.0])


def test_recall_and_mabo_over_images():
    gts = [np.array([[0, 0, 10, 10], [20, 0, 30, 10]]), np.array([[0, 0, 4, 4]])]
    props = [np.array([[0, 0, 10, 10], [20, 0, 30, 30]]), np.array([[0, 0, 4, 2]])]
    # best IoUs: 1.0, 1/3, 0.5
    assert proposal_recall(props, gts, 0.5) == pytest.approx(2 / 3)
    assert proposal_recall(props, gts, 0.51) == pytest.approx(1 / 3)
    assert mabo(props, gts) == pytest.approx((1.0 + 1 / 3 + 0.5) / 3)
    labels = [np.array([1, 2]), np.array([1])]
    assert mabo(props, gts, labels) == pytest.approx(((1.0 + 0.5) / 2 + 1 / 3) / 2)


def test_no_ground_truth_is_nan_and_mismatched_inputs_raise():
    assert math.isnan(proposal_recall([np.zeros((3, 4))], [np.zeros((0, 4))]))
    assert math.isnan(mabo([], []))
    with pytest.raises(ValueError):
        proposal_recall([np.zeros((1, 4))], [])
    with pytest.raises(ValueError):
        mabo([np.zeros((1, 4))], [np.zeros((2, 4))], [np.array([1])])
