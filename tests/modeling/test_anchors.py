import math

import pytest
import torch

from rcnn.modeling.anchors import AnchorGenerator, cell_anchors


def test_cell_anchors_area_and_ratio():
    anchors = cell_anchors([32.0, 64.0], [0.5, 1.0, 2.0])
    assert anchors.shape == (6, 4)
    w = anchors[:, 2] - anchors[:, 0]
    h = anchors[:, 3] - anchors[:, 1]
    torch.testing.assert_close(w * h, torch.tensor([32.0**2] * 3 + [64.0**2] * 3))
    torch.testing.assert_close(h / w, torch.tensor([0.5, 1.0, 2.0] * 2))
    torch.testing.assert_close((anchors[:, :2] + anchors[:, 2:]) / 2, torch.zeros(6, 2))  # centred


def test_grid_exact_values_tiny_case():
    gen = AnchorGenerator(sizes=[8.0], aspect_ratios=[1.0, 4.0], stride=16)
    feature = torch.zeros(1, 3, 2, 3)  # H=2, W=3
    anchors = gen(feature)
    assert anchors.shape == (2 * 3 * 2, 4)
    # ratio 4: w = 8 / 2 = 4, h = 8 * 2 = 16; centres at (x + 0.5) * 16
    expected_first = torch.tensor(
        [
            [4.0, 4.0, 12.0, 12.0],  # (y=0, x=0), ratio 1
            [6.0, 0.0, 10.0, 16.0],  # (y=0, x=0), ratio 4
            [20.0, 4.0, 28.0, 12.0],  # (y=0, x=1), ratio 1
        ]
    )
    torch.testing.assert_close(anchors[:3], expected_first)
    # last position (y=1, x=2), ratio 4: centre (40, 24)
    torch.testing.assert_close(anchors[-1], torch.tensor([38.0, 16.0, 42.0, 32.0]))
    assert gen.num_anchors_per_location == 2


def test_offset_zero_puts_centres_on_cell_corners():
    gen = AnchorGenerator([2.0], [1.0], stride=4, offset=0.0)
    anchors = gen(torch.zeros(1, 1, 1, 2))
    torch.testing.assert_close(anchors, torch.tensor([[-1.0, -1.0, 1.0, 1.0], [3.0, -1.0, 5.0, 1.0]]))


def test_cached_per_feature_size():
    gen = AnchorGenerator([16.0, 32.0], [0.5, 1.0, 2.0], stride=8)
    a = gen(torch.zeros(2, 4, 5, 7))
    assert gen(torch.zeros(1, 8, 5, 7)) is a  # same size: cached
    b = gen(torch.zeros(1, 4, 6, 7))
    assert b.shape == (6 * 7 * 6, 4) and b is not a
    torch.testing.assert_close(b[: a.shape[0]], a)  # extra row appended at the bottom


def test_rejects_empty_sizes():
    with pytest.raises(ValueError):
        AnchorGenerator([], [1.0], stride=16)


def test_square_anchor_side():
    gen = AnchorGenerator([128.0], [1.0], stride=16)
    a = gen(torch.zeros(1, 1, 1, 1))[0]
    assert math.isclose(float(a[2] - a[0]), 128.0)
