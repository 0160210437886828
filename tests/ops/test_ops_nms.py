"""nms / batched_nms against the greedy reference loop and torchvision."""

import pytest
import torch
import torchvision
from helpers.reference_ops import batched_nms_reference, nms_reference

from rcnn.ops import batched_nms, nms


def random_detections(n: int, seed: int, size: float = 200.0, max_wh: float = 60.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * max_wh
    scores = torch.rand(n, generator=g)
    return torch.cat([xy, xy + wh], dim=1), scores, g


@pytest.mark.parametrize("iou_threshold", [0.0, 0.3, 0.5, 0.9])
def test_nms_matches_reference_and_torchvision(iou_threshold):
    boxes, scores, _ = random_detections(150, seed=int(iou_threshold * 10))
    keep = nms(boxes, scores, iou_threshold)
    assert keep.dtype == torch.int64
    assert keep.tolist() == nms_reference(boxes, scores, iou_threshold).tolist()
    assert keep.tolist() == torchvision.ops.nms(boxes, scores, iou_threshold).tolist()
    assert torch.all(scores[keep][:-1] >= scores[keep][1:])  # decreasing score order


def test_nms_empty_input():
    keep = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert keep.shape == (0,) and keep.dtype == torch.int64
    keep = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5)
    assert keep.shape == (0,) and keep.dtype == torch.int64


def test_nms_ties_keep_the_lower_index_first():
    # a overlaps b, b overlaps c, a and c are disjoint; all three scores are equal.
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [10.0, 0.0, 20.0, 10.0]])
    scores = torch.full((3,), 0.7)
    assert nms(boxes, scores, 0.2).tolist() == [0, 2]  # b first would give [1]
    assert nms_reference(boxes, scores, 0.2).tolist() == [0, 2]


def test_nms_many_ties_match_reference():
    boxes, _, g = random_detections(120, seed=3)
    scores = torch.randint(0, 4, (120,), generator=g).float() / 4  # four score levels only
    for threshold in (0.1, 0.5):
        assert nms(boxes, scores, threshold).tolist() == nms_reference(boxes, scores, threshold).tolist()


def test_nms_degenerate_boxes():
    boxes = torch.tensor(
        [
            [5.0, 5.0, 5.0, 20.0],  # zero width
            [5.0, 5.0, 5.0, 20.0],  # identical zero-width box: IoU is 0, never suppressed
            [0.0, 0.0, 10.0, 10.0],
            [0.0, 0.0, 10.0, 10.0],  # identical real box: suppressed
        ]
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    keep = nms(boxes, scores, 0.5)
    assert keep.tolist() == [0, 1, 2]
    assert keep.tolist() == nms_reference(boxes, scores, 0.5).tolist()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_nms_accepts_any_float_dtype(dtype):
    boxes, scores, _ = random_detections(80, seed=4)
    boxes, scores = boxes.to(dtype), scores.to(dtype)
    expected = nms_reference(boxes.double(), scores.double(), 0.5)
    assert nms(boxes, scores, 0.5).tolist() == expected.tolist()


@pytest.mark.parametrize("iou_threshold", [0.3, 0.7])
def test_batched_nms_matches_reference(iou_threshold):
    boxes, scores, g = random_detections(200, seed=5)
    idxs = torch.randint(0, 6, (200,), generator=g)
    keep = batched_nms(boxes, scores, idxs, iou_threshold)
    assert keep.tolist() == batched_nms_reference(boxes, scores, idxs, iou_threshold).tolist()
    assert keep.tolist() == torchvision.ops.batched_nms(boxes, scores, idxs, iou_threshold).tolist()


def test_batched_nms_classes_never_suppress_each_other():
    box = [0.0, 0.0, 10.0, 10.0]
    boxes = torch.tensor([box, box, box])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([1, 2, 1]), 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, torch.tensor([3, 3, 3]), 0.5).tolist() == [0]


def test_batched_nms_negative_coordinates_and_sparse_class_ids():
    # Boxes far below -1: an offset of (max + 1) per class would let these classes overlap.
    boxes = torch.tensor([[-10.0, -10.0, 0.0, 0.0], [-10.0, -10.0, 0.0, 0.0], [-9.0, -9.0, 1.0, 1.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    idxs = torch.tensor([0, 1, 1])
    assert batched_nms(boxes, scores, idxs, 0.5).tolist() == [0, 1]
    assert batched_nms_reference(boxes, scores, idxs, 0.5).tolist() == [0, 1]
    # Large, sparse class ids (COCO-like) with large coordinates.
    big, big_scores, g = random_detections(150, seed=6, size=3000.0, max_wh=400.0)
    sparse = torch.tensor([1, 7, 90, 1000])[torch.randint(0, 4, (150,), generator=g)]
    expected = batched_nms_reference(big, big_scores, sparse, 0.5)
    assert batched_nms(big, big_scores, sparse, 0.5).tolist() == expected.tolist()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_batched_nms_offsets_are_computed_in_float32(dtype):
    # Class ids up to 79 and coordinates up to ~450: the per-class offsets reach ~36,000, where bf16 has a
    # spacing of 256 and fp16 of 32. Done in the input dtype, the trick distorts or collapses the boxes.
    base, _, g = random_detections(20, seed=7, size=300.0, max_wh=150.0)
    base[:, 2:] += 20  # clusters of jittered copies of 20 boxes, at least 20 pixels wide
    boxes = base[torch.randint(0, 20, (300,), generator=g)] + torch.randn(300, 4, generator=g) * 3
    scores = torch.rand(300, generator=g)
    idxs = torch.tensor([0, 21, 40, 63, 79])[torch.randint(0, 5, (300,), generator=g)]
    boxes, scores = boxes.to(dtype), scores.to(dtype)
    expected = batched_nms_reference(boxes.float(), scores.float(), idxs, 0.5)
    assert len(expected) < 200  # plenty of suppression within classes
    assert batched_nms(boxes, scores, idxs, 0.5).tolist() == expected.tolist()

    naive_offsets = idxs.to(dtype) * (boxes.max() + 1)  # the trick in the input's own precision
    naive = torchvision.ops.nms((boxes + naive_offsets[:, None]).float(), scores.float(), 0.5)
    assert naive.tolist() != expected.tolist()  # so the check above can tell the difference


@pytest.mark.parametrize("num_classes", [1, 3, 80])
def test_batched_nms_per_class_path_matches_offset_path(monkeypatch, num_classes):
    # Above PER_CLASS_NMS_MIN_BOXES boxes on the CPU, batched_nms runs one NMS per class: same indices,
    # same order as the single NMS over offset boxes and as torchvision.
    from rcnn.ops import boxes as box_ops

    boxes, scores, g = random_detections(3000, seed=11, size=600.0, max_wh=120.0)
    idxs = torch.randint(0, num_classes, (3000,), generator=g) * 5 + 2  # sparse ids
    assert len(boxes) > box_ops.PER_CLASS_NMS_MIN_BOXES["cpu"]
    per_class = batched_nms(boxes, scores, idxs, 0.5)
    # bf16 inputs take the per-class path too, computed in float32
    half_boxes, half_scores = boxes.bfloat16(), scores.bfloat16()
    expected_half = batched_nms_reference(half_boxes.float(), half_scores.float(), idxs, 0.5)
    assert batched_nms(half_boxes, half_scores, idxs, 0.5).tolist() == expected_half.tolist()
    monkeypatch.setitem(box_ops.PER_CLASS_NMS_MIN_BOXES, "cpu", 10**9)
    offset = batched_nms(boxes, scores, idxs, 0.5)
    assert len(per_class) < 3000
    assert per_class.tolist() == offset.tolist()
    assert per_class.tolist() == torchvision.ops.batched_nms(boxes, scores, idxs, 0.5).tolist()
