"""RoIAlign's separable backward (rcnn.ops.roi_align_separable) against torchvision's kernel: the same
forward, the same input gradient to float rounding, gradcheck in float64; and when RoIAlign uses it."""

import pytest
import torch
import torchvision

from rcnn.ops import RoIAlign
from rcnn.ops.roi_align_separable import roi_align_separable


def random_boxes(g: torch.Generator, n: int, size: float) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=g) * size * 1.2 - size * 0.1  # some start outside the image
    wh = torch.rand(n, 2, generator=g) * size * 0.6
    boxes = torch.cat([xy, xy + wh], dim=1)
    boxes[0] = torch.tensor([5.0, 5.0, 5.0, 5.0])  # degenerate
    boxes[1] = torch.tensor([-40.0, -40.0, -20.0, -10.0])  # wholly outside
    return boxes


def both(features, boxes, output_size, scale, ratio, aligned):
    """(output, input grad) of torchvision's roi_align and of ours, for the same upstream gradient."""
    weight = torch.randn(
        len(torch.cat(boxes)), features.shape[1], *output_size, generator=torch.Generator().manual_seed(5)
    )
    results = []
    for fn in (torchvision.ops.roi_align, roi_align_separable):
        x = features.clone().requires_grad_(True)
        out = fn(x, boxes, output_size, scale, ratio, aligned)
        (out * weight.to(out.dtype)).sum().backward()
        results.append((out.detach(), x.grad))
    return results


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("ratio", [1, 2, 3])
@pytest.mark.parametrize("output_size", [(7, 7), (3, 5)])
def test_same_output_and_gradient_as_torchvision(aligned, ratio, output_size):
    g = torch.Generator().manual_seed(ratio + 10 * aligned)
    features = torch.randn(3, 4, 13, 17, generator=g)
    boxes = [random_boxes(g, 9, 16 * 16.0), torch.zeros(0, 4), random_boxes(g, 5, 16 * 16.0)]
    (tv_out, tv_grad), (out, grad) = both(features, boxes, output_size, 1 / 16, ratio, aligned)
    assert torch.equal(out, tv_out)  # the same forward kernel
    assert grad.shape == tv_grad.shape and tv_grad.abs().sum() > 0
    torch.testing.assert_close(grad, tv_grad, atol=1e-5, rtol=1e-5)
    assert torch.equal(grad[1], torch.zeros_like(grad[1]))  # the image without RoIs gets no gradient


def test_many_rois_are_chunked_without_changing_the_gradient(monkeypatch):
    from rcnn.ops import roi_align_separable as module

    g = torch.Generator().manual_seed(3)
    features = torch.randn(2, 8, 20, 20, generator=g)
    boxes = [random_boxes(g, 40, 160.0), random_boxes(g, 30, 160.0)]
    (_, tv_grad), (_, whole) = both(features, boxes, (7, 7), 1 / 8, 2, False)
    monkeypatch.setattr(module, "_CHUNK_ELEMENTS", 8 * 20 * 20 * 3)  # 3 RoIs per chunk
    (_, _), (_, chunked) = both(features, boxes, (7, 7), 1 / 8, 2, False)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(chunked, tv_grad, atol=1e-5, rtol=1e-5)


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(2, 2, 6, 7, dtype=torch.float64, generator=g, requires_grad=True)
    boxes = [torch.tensor([[2.0, 3.0, 40.0, 30.0], [-5.0, 1.0, 20.0, 50.0]], dtype=torch.float64),
             torch.tensor([[10.0, 10.0, 12.0, 13.0]], dtype=torch.float64)]  # fmt: skip
    assert torch.autograd.gradcheck(
        lambda x: roi_align_separable(x, boxes, (3, 3), 1 / 8, 2, True), (features,)
    )


def test_reduced_precision_features_pool_in_float32():
    g = torch.Generator().manual_seed(1)
    features = torch.randn(1, 4, 10, 10, generator=g).bfloat16().requires_grad_(True)
    boxes = [torch.tensor([[0.0, 0.0, 60.0, 50.0]])]
    out = roi_align_separable(features, boxes, (2, 2), 1 / 8, 2, False)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert features.grad.dtype == torch.bfloat16 and features.grad.abs().sum() > 0


def test_rois_tensor_must_be_sorted_by_image():
    features = torch.randn(2, 1, 5, 5, requires_grad=True)
    rois = torch.tensor([[1.0, 0, 0, 4, 4], [0.0, 0, 0, 3, 3]])
    with pytest.raises(ValueError, match="sorted by batch index"):
        roi_align_separable(features, rois, (2, 2), 1.0, 2, False)
    with pytest.raises(ValueError, match="sampling_ratio > 0"):
        roi_align_separable(features, rois.flip(0), (2, 2), 1.0, -1, False)


def test_the_module_uses_the_separable_backward_only_where_it_applies(monkeypatch):
    from rcnn.ops import roi_align_separable as module

    calls = []
    real = module.roi_align_separable
    monkeypatch.setattr(module, "roi_align_separable", lambda *a, **k: calls.append(1) or real(*a, **k))
    features = torch.randn(1, 3, 8, 8)
    boxes = [torch.tensor([[0.0, 0.0, 30.0, 40.0]])]
    grad_features = features.clone().requires_grad_(True)
    out = RoIAlign(2, 1 / 8, sampling_ratio=2)(grad_features, boxes)
    assert calls == [1]
    out.sum().backward()
    assert RoIAlign(2, 1 / 8, sampling_ratio=2)(features, boxes).shape == (1, 3, 2, 2)  # no grad needed
    RoIAlign(2, 1 / 8, sampling_ratio=-1)(grad_features, boxes)  # adaptive sampling: torchvision's
    RoIAlign(2, 1 / 8, sampling_ratio=2, separable_backward=False)(grad_features, boxes)
    RoIAlign(2, 1 / 8, sampling_ratio=2)(grad_features, torch.tensor([[0.0, 0.0, 0.0, 30.0, 40.0]]))
    assert calls == [1]


def test_backward_under_bf16_autocast_matches_torchvision():
    g = torch.Generator().manual_seed(2)
    features = torch.randn(2, 4, 12, 12, generator=g)
    boxes = [random_boxes(g, 6, 96.0), random_boxes(g, 4, 96.0)]
    grads = []
    for fn in (torchvision.ops.roi_align, roi_align_separable):
        x = features.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = fn(x, boxes, (7, 7), 1 / 8, 2, False)
            (out.float() * 2).sum().backward()  # backward inside the autocast region, as a training step
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-5)
