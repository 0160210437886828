"""soft_nms / batched_soft_nms against the literal pairwise loop."""

import math

import pytest
import torch
from helpers.reference_ops import soft_nms_reference

from rcnn.ops import batched_soft_nms, nms, soft_nms


def clustered_detections(n: int, seed: int, clusters: int = 12):
    """Jittered copies of a few boxes, so that many pairs overlap strongly."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(clusters, 2, generator=g) * 200
    base = torch.cat([xy, xy + 20 + torch.rand(clusters, 2, generator=g) * 60], dim=1)
    boxes = base[torch.randint(0, clusters, (n,), generator=g)] + torch.randn(n, 4, generator=g) * 4
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2])
    return boxes, torch.rand(n, generator=g), g


@pytest.mark.parametrize("method", ["linear", "gaussian"])
@pytest.mark.parametrize("seed", [0, 1])
def test_soft_nms_matches_reference_float64(method, seed):
    boxes, scores, _ = clustered_detections(120, seed)
    boxes, scores = boxes.double(), scores.double()
    keep, new_scores = soft_nms(boxes, scores, method=method, sigma=0.5, iou_threshold=0.3)
    ref_keep, ref_scores = soft_nms_reference(boxes, scores, method=method, sigma=0.5, iou_threshold=0.3)
    assert keep.dtype == torch.int64 and new_scores.dtype == torch.float64
    assert keep.tolist() == ref_keep.tolist()
    torch.testing.assert_close(new_scores, ref_scores, rtol=1e-12, atol=1e-12)
    # rescoring happened, and only downwards
    assert (new_scores <= scores[keep]).all() and (new_scores < scores[keep]).any()
    assert (new_scores[:-1] >= new_scores[1:]).all()  # selection order is decreasing new score


@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_soft_nms_float32_matches_reference(method):
    boxes, scores, _ = clustered_detections(100, seed=2)
    keep, new_scores = soft_nms(boxes, scores, method=method, score_threshold=0.05)
    ref_keep, ref_scores = soft_nms_reference(boxes, scores, method=method, score_threshold=0.05)
    assert new_scores.dtype == torch.float32
    assert keep.tolist() == ref_keep.tolist()
    torch.testing.assert_close(new_scores.double(), ref_scores, rtol=1e-5, atol=1e-6)
    assert (new_scores >= 0.05).all()
    assert len(keep) < len(boxes)  # some boxes were rescored below the threshold


def test_soft_nms_known_values():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    iou = 1 / 3
    keep, new = soft_nms(boxes, scores, method="linear", iou_threshold=0.3)
    assert keep.tolist() == [0, 2, 1]
    torch.testing.assert_close(new, torch.tensor([0.9, 0.7, 0.8 * (1 - iou)]))
    keep, new = soft_nms(boxes, scores, method="linear", iou_threshold=0.5)  # IoU below: untouched
    assert keep.tolist() == [0, 1, 2] and new.tolist() == scores.tolist()
    keep, new = soft_nms(boxes, scores, method="gaussian", sigma=0.5)
    assert keep.tolist() == [0, 2, 1]
    torch.testing.assert_close(new, torch.tensor([0.9, 0.7, 0.8 * math.exp(-(iou**2) / 0.5)]))


def test_soft_nms_empty_input_and_everything_below_threshold():
    for fn in (
        lambda b, s: soft_nms(b, s),
        lambda b, s: batched_soft_nms(b, s, torch.zeros(len(b), dtype=torch.int64)),
    ):
        keep, new = fn(torch.zeros(0, 4), torch.zeros(0))
        assert keep.shape == (0,) and keep.dtype == torch.int64 and new.shape == (0,)
        keep, new = fn(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([0.0001]))
        assert keep.shape == (0,) and new.shape == (0,)


def test_soft_nms_ties_and_degenerate_boxes_match_reference():
    boxes, _, g = clustered_detections(60, seed=3)
    boxes[::7, 2] = boxes[::7, 0]  # zero-width boxes
    scores = torch.randint(1, 5, (60,), generator=g).double() / 4  # many exact ties
    for method in ("linear", "gaussian"):
        keep, new = soft_nms(boxes.double(), scores, method=method)
        ref_keep, ref_new = soft_nms_reference(boxes.double(), scores, method=method)
        assert keep.tolist() == ref_keep.tolist()
        torch.testing.assert_close(new, ref_new)
    # identical boxes with equal scores: the lower index is selected first
    same = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    keep, new = soft_nms(same, torch.full((3,), 0.5), method="gaussian")
    assert keep.tolist() == [0, 1, 2]
    torch.testing.assert_close(new, torch.tensor([0.5, 0.5 * math.exp(-2), 0.5 * math.exp(-4)]))


@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_batched_soft_nms_matches_reference(method):
    boxes, scores, g = clustered_detections(150, seed=4)
    idxs = torch.tensor([2, 5, 90])[torch.randint(0, 3, (150,), generator=g)]
    keep, new = batched_soft_nms(boxes.double(), scores.double(), idxs, method=method)
    ref_keep, ref_new = soft_nms_reference(boxes.double(), scores.double(), method=method, idxs=idxs)
    assert keep.tolist() == ref_keep.tolist()
    torch.testing.assert_close(new, ref_new)
    # each class on its own gives the same kept boxes and scores
    for c in (2, 5, 90):
        members = torch.nonzero(idxs == c).flatten()
        k, s = soft_nms(boxes[members].double(), scores[members].double(), method=method)
        mine = idxs[keep] == c
        assert members[k].tolist() == keep[mine].tolist()
        torch.testing.assert_close(s, new[mine])


def test_linear_soft_nms_with_extreme_threshold_is_hard_nms_like():
    boxes, scores, _ = clustered_detections(80, seed=5)
    # iou_threshold 1: nothing is ever rescored, every box is kept in score order
    keep, new = soft_nms(boxes, scores, method="linear", iou_threshold=1.0, score_threshold=0.0)
    assert keep.tolist() == torch.argsort(scores, descending=True, stable=True).tolist()
    assert new.tolist() == scores[keep].tolist()
    # the kept set always contains what hard NMS keeps first: the top box
    assert keep[0] == nms(boxes, scores, 0.3)[0]


def test_soft_nms_reduced_precision_and_bad_arguments():
    boxes, scores, _ = clustered_detections(40, seed=6)
    keep, new = soft_nms(boxes.bfloat16(), scores.bfloat16())
    ref_keep, _ = soft_nms_reference(boxes.bfloat16().double(), scores.bfloat16().double())
    assert keep.tolist() == ref_keep.tolist() and new.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="method"):
        soft_nms(boxes, scores, method="hard")
    with pytest.raises(ValueError, match="sigma"):
        soft_nms(boxes, scores, method="gaussian", sigma=0.0)
    with pytest.raises(ValueError, match="scores"):
        soft_nms(boxes, scores[:-1])
    with pytest.raises(ValueError, match="idxs"):
        batched_soft_nms(boxes, scores, torch.zeros(3, dtype=torch.int64))
