"""roi_pool / roi_align (functions and modules) against the literal reference loops."""

import pytest
import torch
import torchvision
from helpers.reference_ops import _round_half_away, roi_align_reference, roi_pool_reference

from rcnn.ops import RoIAlign, RoIPool, roi_align, roi_pool


def features(seed: int = 0, n: int = 2, c: int = 3, h: int = 10, w: int = 12, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, h, w, generator=g, dtype=dtype)


def random_rois(k: int, seed: int, n: int = 2, low: float = -12.0, high: float = 56.0, max_wh: float = 36.0):
    """(K, 5) [batch_index, x1, y1, x2, y2] in image pixels; many boxes reach past the feature map."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(k, 2, generator=g, dtype=torch.float64) * (high - low) + low
    wh = torch.rand(k, 2, generator=g, dtype=torch.float64) * max_wh
    batch = torch.randint(0, n, (k, 1), generator=g).double()
    return torch.cat([batch, xy, xy + wh], dim=1)


SPECIAL_ROIS = torch.tensor(
    [
        [0, 4.0, 4.0, 4.0, 20.0],  # zero width
        [1, 6.0, 6.0, 6.0, 6.0],  # a point
        [0, -30.0, -30.0, -10.0, -10.0],  # entirely outside (above-left)
        [1, 60.0, 2.0, 90.0, 30.0],  # entirely outside (right)
        [0, -8.0, -8.0, 12.0, 12.0],  # partly outside
        [1, 30.0, 20.0, 70.0, 60.0],  # partly outside (bottom-right)
        [0, 5.0, 3.0, 9.0, 11.0],  # corners at exact halves after scaling by 0.5: C rounding matters
        [0, 0.0, 0.0, 47.0, 39.0],  # the whole map
    ],
    dtype=torch.float64,
)


def test_round_half_away_from_zero():
    assert [_round_half_away(v) for v in (2.5, 3.5, -2.5, 2.49, -0.4)] == [3, 4, -3, 2, 0]


@pytest.mark.parametrize("spatial_scale", [0.25, 0.5])
@pytest.mark.parametrize("output_size", [(2, 2), (3, 4)])
def test_roi_pool_matches_reference(spatial_scale, output_size):
    x = features()
    rois = torch.cat([random_rois(25, seed=1), SPECIAL_ROIS])
    out = roi_pool(x, rois, output_size, spatial_scale)
    assert out.shape == (len(rois), 3, *output_size)
    torch.testing.assert_close(out, roi_pool_reference(x, rois, output_size, spatial_scale), rtol=0, atol=0)
    torch.testing.assert_close(out, torchvision.ops.roi_pool(x, rois, output_size, spatial_scale))


def test_roi_pool_empty_bins_are_zero():
    x = features() + 100.0  # all values far from 0
    outside = SPECIAL_ROIS[2:4]
    assert torch.equal(roi_pool(x, outside, 3, 0.25), torch.zeros(2, 3, 3, 3, dtype=x.dtype))
    inside = roi_pool(x, SPECIAL_ROIS[7:8], 3, 0.25)
    assert (inside > 50).all()


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_roi_align_matches_reference(aligned, sampling_ratio):
    x = features(seed=2)
    rois = torch.cat([random_rois(20, seed=3), SPECIAL_ROIS])
    for scale in (0.25, 0.5):
        out = roi_align(x, rois, (3, 2), scale, sampling_ratio, aligned)
        expected = roi_align_reference(x, rois, (3, 2), scale, sampling_ratio, aligned)
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_roi_align_aligned_differs_and_outside_is_zero():
    x = features(seed=4)
    rois = SPECIAL_ROIS[[4, 5, 7]]
    assert not torch.allclose(roi_align(x, rois, 2, 0.25, 2, False), roi_align(x, rois, 2, 0.25, 2, True))
    far = torch.tensor([[0, -200.0, -200.0, -100.0, -100.0]], dtype=torch.float64)
    assert torch.equal(roi_align(x, far, 2, 0.25, 2), torch.zeros(1, 3, 2, 2, dtype=x.dtype))


def test_roi_align_constant_map_inside_gives_the_constant():
    x = torch.full((1, 2, 8, 8), 3.0)
    rois = torch.tensor([[0, 4.0, 4.0, 20.0, 24.0]])
    torch.testing.assert_close(roi_align(x, rois, 4, 0.25, 2, aligned=True), torch.full((1, 2, 4, 4), 3.0))


def test_empty_rois_and_list_form():
    x = features(dtype=torch.float32)
    for op in (lambda r: roi_pool(x, r, 2, 0.5), lambda r: roi_align(x, r, 2, 0.5, 2)):
        assert op(torch.zeros(0, 5)).shape == (0, 3, 2, 2)
        assert op([torch.zeros(0, 4), torch.zeros(0, 4)]).shape == (0, 3, 2, 2)
    rois = random_rois(8, seed=5).float()
    per_image = [rois[rois[:, 0] == n, 1:] for n in range(2)]
    stacked = torch.cat([rois[rois[:, 0] == n] for n in range(2)])
    torch.testing.assert_close(roi_pool(x, per_image, 2, 0.5), roi_pool(x, stacked, 2, 0.5))
    torch.testing.assert_close(roi_align(x, per_image, 2, 0.5, 2), roi_align(x, stacked, 2, 0.5, 2))
    expected = roi_align_reference(x.double(), per_image, (2, 2), 0.5, 2).float()
    torch.testing.assert_close(roi_align(x, per_image, 2, 0.5, 2), expected)


def test_modules_equal_functions():
    x = features(seed=6, dtype=torch.float32)
    rois = random_rois(10, seed=7).float()
    pool = RoIPool((3, 2), spatial_scale=0.25)
    align = RoIAlign(4, spatial_scale=0.5, sampling_ratio=2, aligned=True)
    assert torch.equal(pool(x, rois), roi_pool(x, rois, (3, 2), 0.25))
    assert torch.equal(align(x, rois), roi_align(x, rois, 4, 0.5, 2, True))
    assert "output_size=(3, 2)" in repr(pool) and "aligned=True" in repr(align)


def test_gradcheck_float64():
    x = features(seed=8, n=1, c=2, h=6, w=7).requires_grad_()
    rois = torch.tensor([[0, 1.0, 2.0, 20.0, 18.0], [0, -4.0, 3.0, 10.0, 30.0], [0, 6.0, 6.0, 6.0, 14.0]])
    rois = rois.double()
    assert torch.autograd.gradcheck(lambda t: roi_pool(t, rois, (2, 3), 0.25), (x,))
    for aligned in (False, True):
        assert torch.autograd.gradcheck(lambda t, a=aligned: roi_align(t, rois, (2, 3), 0.25, 2, a), (x,))


def test_backward_matches_reference():
    x = features(seed=9, n=2, c=2, h=7, w=9)
    rois = torch.cat([random_rois(6, seed=10, max_wh=20.0), SPECIAL_ROIS[[0, 4, 5]]])
    weight = torch.randn(len(rois), 2, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    cases = [
        (lambda t: roi_pool(t, rois, (2, 3), 0.5), lambda t: roi_pool_reference(t, rois, (2, 3), 0.5)),
        (
            lambda t: roi_align(t, rois, (2, 3), 0.5, -1, True),
            lambda t: roi_align_reference(t, rois, (2, 3), 0.5, -1, True),
        ),
    ]
    for op, reference in cases:
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        (op(a) * weight).sum().backward()
        (reference(b) * weight).sum().backward()
        assert a.grad.abs().sum() > 0
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_features(dtype):
    x = features(seed=11, dtype=torch.float32)
    rois = random_rois(6, seed=12).float()
    low = x.to(dtype)
    for op in (lambda t: roi_pool(t, rois, 2, 0.25), lambda t: roi_align(t, rois, 2, 0.25, 2)):
        out = op(low)
        assert out.dtype == dtype
        torch.testing.assert_close(out, op(low.float()).to(dtype))
