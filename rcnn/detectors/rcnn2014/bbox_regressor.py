"""Class-specific bounding-box regression of R-CNN (Girshick et al., 2014, appendix C).

For each class, a linear map from a proposal's pool5 features to the deltas ``(dx, dy, dw, dh)``
(:class:`rcnn.modeling.box_coder.BoxCoder` with unit weights) that move the proposal onto its
best-overlapping ground-truth box, fit by ridge regression (lambda = 1000) on the proposals with IoU >= 0.6.
As in the original code (``rcnn_train_bbox_regressor.m``), the features get a constant bias column
(regularised with the rest) and the targets are centred and whitened before the fit; predictions are
mapped back with the inverse transform.

Shape shorthand:
    n: training examples of a class; D: feature dimension; T: targets (4).
"""

from __future__ import annotations

import torch
from torch import Tensor


def ridge_regression(x: Tensor, y: Tensor, lam: float) -> Tensor:
    """``argmin_B |[x, 1] B - y|^2 + lam |B|^2``: x (n, D), y (n, T) -> B (D + 1, T), last row the bias.

    Solved in float64 in the primal, ``(X'X + lam I) B = X'y``, or, with fewer examples than features,
    in the dual, ``B = X' (XX' + lam I)^-1 y``: the same minimiser at the cost of the smaller system.
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must be (n, D) and (n, T), got {tuple(x.shape)} and {tuple(y.shape)}")
    if lam <= 0:
        raise ValueError(f"lambda must be positive, got {lam}")
    x = torch.cat([x.double(), x.new_ones((x.shape[0], 1), dtype=torch.float64)], dim=1)  # (n, D + 1)
    y = y.double()
    n, d = x.shape
    if n >= d:
        a = x.t() @ x + lam * torch.eye(d, dtype=torch.float64)
        return torch.linalg.solve(a, x.t() @ y).float()
    a = x @ x.t() + lam * torch.eye(n, dtype=torch.float64)
    return (x.t() @ torch.linalg.solve(a, y)).float()


def whitening(y: Tensor, eps: float = 0.001) -> tuple[Tensor, Tensor, Tensor]:
    """Centre and decorrelate targets y (n, T): returns ``mu (T,)``, ``t (T, T)`` and ``t_inv (T, T)`` with
    ``(y - mu) @ t`` white (unit covariance, up to ``eps``) and ``z @ t_inv + mu`` its inverse."""
    y = y.double()
    mu = y.mean(0)
    centred = y - mu
    cov = centred.t() @ centred / max(y.shape[0], 1)
    values, vectors = torch.linalg.eigh(cov)
    t = vectors @ torch.diag(1.0 / torch.sqrt(values.clamp(min=0) + eps)) @ vectors.t()
    t_inv = vectors @ torch.diag(torch.sqrt(values.clamp(min=0) + eps)) @ vectors.t()
    return mu.float(), t.float(), t_inv.float()


def fit_box_regressor(features: Tensor, targets: Tensor, lam: float = 1000.0) -> dict[str, Tensor]:
    """Fit one class's regressor: features (n, D), target deltas (n, 4) -> ``{"beta" (D + 1, 4), "mu" (4,),
    "t_inv" (4, 4)}``; predict with :func:`predict_deltas`."""
    mu, t, t_inv = whitening(targets)
    beta = ridge_regression(features, (targets.float() - mu) @ t, lam)
    return {"beta": beta, "mu": mu, "t_inv": t_inv}


def predict_deltas(features: Tensor, regressor: dict[str, Tensor]) -> Tensor:
    """Deltas (n, 4) of features (n, D) with a fitted regressor."""
    x = torch.cat([features.float(), features.new_ones((features.shape[0], 1), dtype=torch.float32)], dim=1)
    return (x @ regressor["beta"]) @ regressor["t_inv"] + regressor["mu"]
