"""Warping proposals with context (R-CNN, appendix A): where the original box lands in the crop."""

from __future__ import annotations

import pytest
import torch

from rcnn.detectors.rcnn2014.warp import context_boxes, context_scale, inner_region, warp_boxes


def test_context_boxes_hand_case():
    # 32 x 32 box, S = 64, p = 16: the box must fill [16, 48) of the crop, so the crop spans 64 px = twice it
    boxes = torch.tensor([[10.0, 10.0, 42.0, 42.0], [0.0, 20.0, 100.0, 30.0]])
    out = context_boxes(boxes, 64, 16)
    assert torch.allclose(out[0], torch.tensor([-6.0, -6.0, 58.0, 58.0]))
    # anisotropic: each side dilated by its own length times p / (S - 2p) = 0.5
    assert torch.allclose(out[1], torch.tensor([-50.0, 15.0, 150.0, 35.0]))
    assert context_scale(227, 16) == pytest.approx(227 / 195)
    assert inner_region(227, 16) == (16, 211)
    assert torch.equal(context_boxes(boxes, 64, 0), boxes)


def test_original_box_fills_the_inner_region_exactly():
    # one crop pixel per image pixel: the box's pixels land exactly on [16, 48) x [16, 48)
    image = torch.zeros(3, 80, 80)
    image[:, 10:42, 10:42] = torch.arange(32.0)[None, None, :] + 1  # columns 1..32 inside the box
    (crop,) = warp_boxes(image, torch.tensor([[10.0, 10.0, 42.0, 42.0]]), 64, 16)
    assert crop.shape == (3, 64, 64)
    assert torch.equal(crop[:, 16:48, 16:48], image[:, 10:42, 10:42])
    assert torch.all(crop[:, :16, :] == 0) and torch.all(crop[:, 48:, :] == 0)
    assert torch.all(crop[:, :, :16] == 0) and torch.all(crop[:, :, 48:] == 0)


def test_anisotropic_warp_and_outside_of_the_image_is_zero():
    # a wide 32 x 16 box at the image's top-left corner, warped to 64 x 64 with p = 16
    image = torch.full((3, 40, 60), 5.0)
    (crop,) = warp_boxes(image, torch.tensor([[0.0, 0.0, 32.0, 16.0]]), 64, 16)
    # x: scale 1, the context box spans [-16, 48): crop columns < 16 lie left of the image (the mean, 0)
    # y: scale 2, the context box spans [-8, 24): crop rows < 16 lie above the image
    assert torch.all(crop[:, :, :15] == 0) and torch.all(crop[:, :15, :] == 0)
    assert torch.all(crop[:, 17:48, 17:48] == 5.0)  # the box itself (bilinear edge at 16 aside)
    # below the box, still inside the image (y up to 24 < 40): image content, not padding
    assert torch.all(crop[:, 48:, 17:48] == 5.0)


def test_upsampled_rows_sample_bin_centres():
    # box rows [12, 28) -> crop rows [16, 48) (scale 2); with context the crop spans image rows [4, 36)
    image = torch.arange(40.0)[None, :, None].expand(3, 40, 50).contiguous()  # value = row index
    (crop,) = warp_boxes(image, torch.tensor([[10.0, 12.0, 42.0, 28.0]]), 64, 16)
    rows = torch.arange(64.0)
    y = 4.0 + (rows + 0.5) * 0.5  # crop row i samples the centre of its bin, continuous coordinates
    assert torch.allclose(crop[0, :, 30], y - 0.5, atol=1e-5)  # pixel j holds the value j at j + 0.5


def test_many_boxes_and_no_boxes():
    image = torch.rand(3, 30, 30)
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 25.0, 15.0], [3.0, 3.0, 3.0, 9.0]])
    crops = warp_boxes(image, boxes, 24, 2)
    assert crops.shape == (3, 3, 24, 24) and torch.isfinite(crops).all()
    assert warp_boxes(image, torch.zeros(0, 4), 24, 2).shape == (0, 3, 24, 24)
    with pytest.raises(ValueError, match="padding"):
        context_boxes(boxes, 32, 16)
    with pytest.raises(ValueError, match=r"\(R, 4\)"):
        warp_boxes(image, torch.zeros(4), 24, 2)
