"""R-CNN box regression (appendix C): ridge regression recovers a linear map, primal and dual agree, the
whitening of the targets is undone at prediction."""

from __future__ import annotations

import torch

from rcnn.detectors.rcnn2014.bbox_regressor import (
    fit_box_regressor,
    predict_deltas,
    ridge_regression,
    whitening,
)


def linear_data(n: int, d: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.randn(d, 4, generator=g)
    bias = torch.tensor([0.5, -1.0, 0.25, 2.0])
    return x, x @ w + bias, w, bias


def test_ridge_recovers_a_known_linear_map():
    x, y, w, bias = linear_data(500, 8)
    beta = ridge_regression(x, y, lam=1e-6)
    assert beta.shape == (9, 4)
    assert torch.allclose(beta[:-1], w, atol=1e-4) and torch.allclose(beta[-1], bias, atol=1e-4)


def test_ridge_shrinks_and_dual_equals_primal():
    x, y, _, _ = linear_data(500, 8)
    small, large = ridge_regression(x, y, 1e-3), ridge_regression(x, y, 1e4)
    assert large.norm() < 0.2 * small.norm()
    # fewer examples than features: the dual form; it must be the same minimiser as the primal
    x, y, _, _ = linear_data(12, 30, seed=1)
    dual = ridge_regression(x, y, 0.5)
    xa = torch.cat([x.double(), torch.ones(12, 1, dtype=torch.float64)], 1)
    primal = torch.linalg.solve(xa.t() @ xa + 0.5 * torch.eye(31, dtype=torch.float64), xa.t() @ y.double())
    assert torch.allclose(dual.double(), primal, atol=1e-4)


def test_whitening_and_box_regressor_round_trip():
    x, y, _, _ = linear_data(400, 5, seed=2)
    y = y * torch.tensor([0.1, 0.1, 0.2, 0.2])  # R-CNN-like target scales
    mu, t, t_inv = whitening(y, eps=1e-9)
    white = (y - mu) @ t
    assert torch.allclose(white.t() @ white / 400, torch.eye(4), atol=1e-3)
    mu, t, t_inv = whitening(y)  # eps = 0.001 added to the variances, as the original code
    assert torch.allclose(((y - mu) @ t) @ t_inv + mu, y, atol=1e-4)
    fit = fit_box_regressor(x, y, lam=1e-4)
    assert torch.allclose(predict_deltas(x, fit), y, atol=1e-3)
