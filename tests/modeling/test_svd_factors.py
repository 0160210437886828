"""rcnn.modeling.svd's factorisation: the Gram-matrix route of large layers gives the SVD's truncations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rcnn.modeling import svd


@pytest.mark.parametrize("shape", [(120, 260), (260, 120)])
def test_gram_svd_gives_the_truncations_of_the_svd(shape):
    torch.manual_seed(0)
    weight = torch.randn(*shape) / 20
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    gu, gs, gvh = svd.gram_svd(weight)
    assert gu.shape == u.shape and gs.shape == s.shape and gvh.shape == vh.shape
    assert gu.dtype == torch.float32
    torch.testing.assert_close(gs, s, atol=1e-5, rtol=1e-5)
    for rank in (1, 10, 60, min(shape)):
        exact = u[:, :rank] @ (s[:rank, None] * vh[:rank])
        torch.testing.assert_close(gu[:, :rank] @ (gs[:rank, None] * gvh[:rank]), exact, atol=1e-5, rtol=0)
    torch.testing.assert_close(gvh @ gvh.T, torch.eye(min(shape)), atol=1e-4, rtol=0)  # orthonormal rows


def test_large_layers_take_the_gram_route_and_factor_the_same(monkeypatch):
    torch.manual_seed(1)
    linear = nn.Linear(80, 50)
    exact = svd.truncated_svd_linear(linear, 20)
    calls = []
    real = svd.gram_svd
    monkeypatch.setattr(svd, "gram_svd", lambda w: calls.append(w.shape) or real(w))
    monkeypatch.setattr(svd, "GRAM_MIN_SIDE", 50)
    via_gram = svd.truncated_svd_linear(linear, 20)
    assert calls == [(50, 80)]
    x = torch.randn(7, 80)
    with torch.no_grad():
        torch.testing.assert_close(via_gram(x), exact(x), atol=1e-5, rtol=0)
