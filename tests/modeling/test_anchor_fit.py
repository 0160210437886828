"""Anchor fit: best-anchor IoUs and the report's fractions against hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from rcnn.modeling.anchor_fit import anchor_fit_report, best_anchor_iou
from rcnn.modeling.anchors import AnchorGenerator, PyramidAnchorGenerator


def test_best_anchor_iou_by_hand():
    # one 32x32 anchor per cell of stride 32 on a 64x64 image: centres (16, 16), (48, 16), (16, 48), (48, 48)
    gen = AnchorGenerator([32.0], [1.0], stride=32)
    boxes = torch.tensor(
        [
            [0.0, 0.0, 32.0, 32.0],  # exactly the first anchor
            [0.0, 0.0, 16.0, 32.0],  # half of it: IoU 0.5
            [8.0, 0.0, 40.0, 32.0],  # shifted by a quarter: 768 / 1280 = 0.6 with two anchors
            [0.0, 0.0, 8.0, 8.0],  # 64 / 1024
        ]
    )
    ious = best_anchor_iou(boxes, (64, 64), gen)
    assert ious.tolist() == pytest.approx([1.0, 0.5, 0.6, 64 / 1024])
    assert best_anchor_iou(torch.zeros(0, 4), (64, 64), gen).shape == (0,)


def test_best_anchor_iou_of_a_pyramid_is_the_best_over_its_levels_each_at_its_stride():
    boxes = torch.tensor([[4.0, 4.0, 28.0, 28.0], [0.0, 0.0, 96.0, 96.0], [8.0, 8.0, 32.0, 32.0]])
    pyramid = PyramidAnchorGenerator([[24.0], [96.0]], [1.0], [8, 32])
    per_level = torch.stack([best_anchor_iou(boxes, (128, 128), g) for g in pyramid.levels])
    assert torch.equal(best_anchor_iou(boxes, (128, 128), pyramid), per_level.max(dim=0).values)
    # the 24 px box centred at (16, 16): a stride-8 cell centre (offset 0.5: 12, 20, ...) is 4 px off in x
    # and y, so IoU 20 * 20 / (2 * 576 - 400); the 96 px box centred at (48, 48) is the 96 anchor of the
    # stride-32 level
    assert best_anchor_iou(boxes, (128, 128), pyramid)[0].item() == pytest.approx(400 / 752)
    assert best_anchor_iou(boxes, (128, 128), pyramid)[1].item() == pytest.approx(1.0)
    # the 24 px box centred at (20, 20) sits on a stride-8 cell centre; tiled at the coarse stride only
    # (centres 16, 48, ...), it is 4 px off again
    assert best_anchor_iou(boxes, (128, 128), pyramid)[2].item() == pytest.approx(1.0)
    coarse = AnchorGenerator([24.0, 96.0], [1.0], 32)
    assert best_anchor_iou(boxes, (128, 128), coarse)[2].item() == pytest.approx(400 / 752)


def test_report_fractions_by_size_and_the_advice_for_small_boxes():
    ious = [0.9, 0.6, 0.2, 0.1, 0.8, 0.75]
    sizes = [10.0, 12.0, 14.0, 15.0, 40.0, 50.0]  # four under 16 px, two of 32-64 px
    ratios = [1.0] * 6
    report = anchor_fit_report(ious, sizes, ratios, [64.0, 128.0], [1.0])
    assert report["all"] == {"boxes": 6, "iou>=0.7": 0.5, "iou>=0.5": pytest.approx(4 / 6),
                             "iou<0.3": pytest.approx(2 / 6)}  # fmt: skip
    small, mid, between = report["by_size"][0], report["by_size"][2], report["by_size"][1]
    assert (small["size"], small["boxes"], small["iou>=0.7"], small["iou>=0.5"], small["iou<0.3"]) == (
        "0-16 px", 4, 0.25, 0.5, 0.5,
    )  # fmt: skip
    assert (mid["boxes"], mid["iou>=0.7"], mid["iou<0.3"]) == (2, 1.0, 0.0)
    assert between["boxes"] == 0 and between["iou>=0.5"] is None
    # the unfit boxes are 14 and 15 px: median 14.5, far from 64 -> a new size, rounded to 8 px
    assert report["advice"] == "50% of boxes under 16 px have no anchor of IoU >= 0.5; add anchor size 16"


def test_advice_names_an_aspect_ratio_when_the_size_is_there_and_none_when_all_fit():
    report = anchor_fit_report([0.3, 0.3, 0.9], [64.0, 64.0, 64.0], [4.0, 4.0, 1.0], [64.0], [1.0])
    assert report["advice"].startswith(
        "67% of boxes of 64-128 px have no anchor of IoU >= 0.5; add aspect ratio 4"
    )
    assert anchor_fit_report([0.9], [20.0], [1.0], [16.0], [1.0])["advice"].startswith("the anchors fit")
