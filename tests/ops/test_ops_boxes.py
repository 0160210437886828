"""Box conversions, area, pairwise IoU, clipping, small-box removal."""

import pytest
import torch
from helpers.reference_ops import iou_pair

from rcnn.ops import (
    box_area,
    box_cxcywh_to_xyxy,
    box_iou,
    box_xywh_to_xyxy,
    box_xyxy_to_cxcywh,
    box_xyxy_to_xywh,
    clip_boxes_to_image,
    remove_small_boxes,
)


def random_boxes(n: int, seed: int = 0, size: float = 100.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * size
    wh = torch.rand(n, 2, generator=g) * size / 2
    return torch.cat([xy, xy + wh], dim=1)


def test_conversions_on_known_box():
    xyxy = torch.tensor([[10.0, 20.0, 40.0, 80.0]])
    assert box_xyxy_to_xywh(xyxy).tolist() == [[10.0, 20.0, 30.0, 60.0]]
    assert box_xyxy_to_cxcywh(xyxy).tolist() == [[25.0, 50.0, 30.0, 60.0]]
    assert box_xywh_to_xyxy(torch.tensor([[10.0, 20.0, 30.0, 60.0]])).tolist() == xyxy.tolist()
    assert box_cxcywh_to_xyxy(torch.tensor([[25.0, 50.0, 30.0, 60.0]])).tolist() == xyxy.tolist()


def test_conversions_round_trip_and_keep_shape():
    boxes = random_boxes(50)
    torch.testing.assert_close(box_xywh_to_xyxy(box_xyxy_to_xywh(boxes)), boxes)
    torch.testing.assert_close(box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(boxes)), boxes)
    batched = boxes.view(5, 10, 4)
    assert box_xyxy_to_xywh(batched).shape == (5, 10, 4)
    for convert in (box_xyxy_to_xywh, box_xywh_to_xyxy, box_xyxy_to_cxcywh, box_cxcywh_to_xyxy):
        assert convert(torch.zeros(0, 4)).shape == (0, 4)


def test_area_is_zero_for_degenerate_boxes():
    boxes = torch.tensor([[0.0, 0.0, 4.0, 5.0], [3.0, 3.0, 3.0, 9.0], [5.0, 5.0, 2.0, 2.0]])
    assert box_area(boxes).tolist() == [20.0, 0.0, 0.0]
    assert box_area(torch.zeros(0, 4)).shape == (0,)


def test_box_iou_matches_pairwise_reference():
    a, b = random_boxes(17, seed=1), random_boxes(9, seed=2)
    expected = torch.tensor([[iou_pair(p, q) for q in b.tolist()] for p in a.tolist()])
    torch.testing.assert_close(box_iou(a, b), expected.float(), atol=1e-6, rtol=1e-5)
    # symmetric, 1 on the diagonal for non-degenerate boxes, inside [0, 1]
    square = box_iou(a, a)
    torch.testing.assert_close(square, square.T)
    torch.testing.assert_close(square.diagonal(), torch.ones(17))
    assert square.min() >= 0 and square.max() <= 1 + 1e-6


def test_box_iou_known_values_and_degenerate_cases():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor(
        [
            [5.0, 0.0, 15.0, 10.0],  # half overlap: 50 / 150
            [20.0, 20.0, 30.0, 30.0],  # disjoint
            [5.0, 5.0, 5.0, 8.0],  # zero width, inside a
        ]
    )
    torch.testing.assert_close(box_iou(a, b), torch.tensor([[1 / 3, 0.0, 0.0]]))
    zero = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    assert box_iou(zero, zero).tolist() == [[0.0]]  # empty union: 0, not NaN
    assert box_iou(torch.zeros(0, 4), a).shape == (0, 1)
    assert box_iou(a, torch.zeros(0, 4)).shape == (1, 0)


def test_clip_boxes_to_image():
    boxes = torch.tensor([[-5.0, -3.0, 50.0, 20.0], [10.0, 12.0, 30.0, 40.0]])
    clipped = clip_boxes_to_image(boxes, (25, 40))  # (height, width)
    assert clipped.tolist() == [[0.0, 0.0, 40.0, 20.0], [10.0, 12.0, 30.0, 25.0]]
    assert clip_boxes_to_image(boxes.view(1, 2, 4), (25, 40)).shape == (1, 2, 4)


@pytest.mark.parametrize("min_size, expected", [(0.0, [0, 1, 2, 3]), (2.0, [0, 3]), (5.0, [0])])
def test_remove_small_boxes(min_size, expected):
    boxes = torch.tensor(
        [[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 1.0, 10.0], [0.0, 0.0, 10.0, 0.0], [0.0, 0.0, 2.0, 3.0]]
    )
    keep = remove_small_boxes(boxes, min_size)
    assert keep.dtype == torch.int64
    assert keep.tolist() == expected


# torchvision's own low-precision case (test_ops.py, TestBoxIou / TestBoxArea): boxes of about 900 x 665 px.
TV_BOXES = [[285.3538, 185.5758, 1193.5110, 851.4551], [285.1472, 188.7374, 1192.4984, 851.0669],
            [279.2440, 197.9812, 1189.4746, 849.2019]]  # fmt: skip
TV_IOU = [[1.0, 0.9933, 0.9673], [0.9933, 1.0, 0.9737], [0.9673, 0.9737, 1.0]]
TV_AREAS = [604723.0806, 600965.4666, 592761.0085]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_box_iou_and_area_upcast_low_precision(dtype):
    boxes = torch.tensor(TV_BOXES, dtype=dtype)
    assert min(TV_AREAS) > torch.finfo(torch.float16).max  # what made every IoU 0 before the upcast
    iou, area = box_iou(boxes, boxes), box_area(boxes)
    assert iou.dtype == area.dtype == torch.float32
    # The inputs are rounded to ``dtype``: compare with the exact result on the rounded coordinates too.
    exact = box_iou(boxes.double(), boxes.double()).float()
    torch.testing.assert_close(iou, exact, rtol=0, atol=1e-6)
    atol = 2e-3 if dtype == torch.float16 else 2e-2  # bf16 keeps 8 bits of mantissa: coordinates move ~1 px
    torch.testing.assert_close(iou, torch.tensor(TV_IOU), rtol=0, atol=atol)
    torch.testing.assert_close(
        area, torch.tensor(TV_AREAS), rtol=2e-3 if dtype == torch.float16 else 2e-2, atol=0
    )
    assert (torch.diagonal(iou) == 1).all()


@pytest.mark.parametrize("dtype", [torch.int16, torch.int32, torch.int64, torch.uint8])
def test_box_iou_and_area_of_integer_boxes(dtype):
    boxes = torch.tensor([[0, 0, 100, 100], [0, 0, 50, 100], [200, 200, 250, 250]], dtype=dtype)
    if dtype == torch.uint8:
        boxes = boxes.clamp(max=255)
    area = box_area(boxes)
    assert area.dtype == torch.int64 and area.tolist() == [10000, 5000, 2500]
    iou = box_iou(boxes, boxes)
    assert iou.dtype == torch.float32
    torch.testing.assert_close(iou, box_iou(boxes.float(), boxes.float()))
    assert iou[0, 1].item() == 0.5 and iou[0, 2].item() == 0.0


def test_box_area_of_large_int32_boxes_does_not_overflow():
    boxes = torch.tensor([[0, 0, 70000, 70000]], dtype=torch.int32)  # 4.9e9 > 2**31
    assert box_area(boxes).tolist() == [4_900_000_000]
    assert box_iou(boxes, boxes).tolist() == [[1.0]]
