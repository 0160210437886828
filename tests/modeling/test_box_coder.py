import math

import pytest
import torch

from rcnn.modeling.box_coder import BoxCoder


def random_boxes(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 50 + 1
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)])
def test_encode_decode_round_trip(weights):
    coder = BoxCoder(weights)
    gt, proposals = random_boxes(50, 0), random_boxes(50, 1)
    deltas = coder.encode(gt, proposals)
    assert deltas.shape == (50, 4)
    torch.testing.assert_close(coder.decode(deltas, proposals), gt, rtol=1e-4, atol=1e-3)


def test_encode_known_values():
    coder = BoxCoder((10.0, 10.0, 5.0, 5.0))
    proposal = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    gt = torch.tensor([[5.0, 0.0, 25.0, 20.0]])  # centre +10 in x, twice as wide
    expected = torch.tensor([[10.0 * 10 / 10, 0.0, 5.0 * math.log(2.0), 0.0]])
    torch.testing.assert_close(coder.encode(gt, proposal), expected)


def test_identity_deltas_return_the_boxes():
    boxes = random_boxes(7)
    torch.testing.assert_close(BoxCoder().decode(torch.zeros(7, 4), boxes), boxes)


def test_decode_class_specific_layout():
    coder = BoxCoder()
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    deltas = torch.tensor(
        [[0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]]
    )  # class 0: identity, class 1: +1 width in x
    out = coder.decode(deltas, boxes)
    assert out.shape == (1, 8)
    torch.testing.assert_close(out[:, :4], boxes)
    torch.testing.assert_close(out[:, 4:], boxes + torch.tensor([[10.0, 0.0, 10.0, 0.0]]))


def test_decode_clamps_log_scale_before_exp():
    coder = BoxCoder(clamp=math.log(1000.0 / 16))
    boxes = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    out = coder.decode(torch.tensor([[0.0, 0.0, 1e4, 1e4]]), boxes)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0, 2] - out[0, 0], torch.tensor(1000.0))


def test_encode_is_finite_for_degenerate_boxes():
    coder = BoxCoder()
    out = coder.encode(torch.tensor([[5.0, 5.0, 5.0, 9.0]]), torch.tensor([[0.0, 0.0, 0.0, 0.0]]))
    assert torch.isfinite(out).all()
