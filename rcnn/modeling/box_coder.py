"""Box regression targets in the parameterisation of R-CNN (Girshick et al., 2014, appendix C).

For a reference (ground-truth) box ``g`` and a proposal/anchor ``p`` with centres ``x, y`` and sizes ``w, h``:

    dx = wx * (gx - px) / pw      dy = wy * (gy - py) / ph
    dw = ww * log(gw / pw)        dh = wh * log(gh / ph)

Shape shorthand:
    N: boxes; k: classes with their own deltas (deltas are ``(N, 4 * k)``, class-major: ``[dx, dy, dw, dh]``
    of class 0, then class 1, ...).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)


class BoxCoder:
    """Encodes boxes as deltas relative to proposals and decodes them back.

    weights: ``(wx, wy, ww, wh)`` multipliers of the deltas (Fast R-CNN heads use ``(10, 10, 5, 5)``, which
    brings the targets to unit-ish variance). clamp: upper bound on ``dw, dh`` before ``exp`` in
    :meth:`decode`, so that a wild prediction cannot overflow.
    """

    def __init__(self, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0), clamp: float = DEFAULT_SCALE_CLAMP):
        if len(weights) != 4:
            raise ValueError(f"weights must be (wx, wy, ww, wh), got {weights}")
        self.weights = tuple(float(w) for w in weights)
        self.clamp = float(clamp)

    def encode(self, reference: Tensor, proposals: Tensor) -> Tensor:
        """Deltas (N, 4) that turn ``proposals`` (N, 4) into ``reference`` (N, 4), computed in float32."""
        reference, proposals = reference.float(), proposals.float()
        eps = torch.finfo(torch.float32).eps
        pw = (proposals[:, 2] - proposals[:, 0]).clamp(min=eps)
        ph = (proposals[:, 3] - proposals[:, 1]).clamp(min=eps)
        px, py = proposals[:, 0] + 0.5 * pw, proposals[:, 1] + 0.5 * ph
        gw = (reference[:, 2] - reference[:, 0]).clamp(min=eps)
        gh = (reference[:, 3] - reference[:, 1]).clamp(min=eps)
        gx, gy = reference[:, 0] + 0.5 * gw, reference[:, 1] + 0.5 * gh
        wx, wy, ww, wh = self.weights
        return torch.stack(
            [wx * (gx - px) / pw, wy * (gy - py) / ph, ww * torch.log(gw / pw), wh * torch.log(gh / ph)],
            dim=1,
        )

    def decode(self, deltas: Tensor, boxes: Tensor) -> Tensor:
        """Apply ``deltas`` (N, 4 * k) to ``boxes`` (N, 4); returns (N, 4 * k) xyxy boxes in float32."""
        deltas, boxes = deltas.float(), boxes.float()
        n = deltas.shape[0]
        deltas = deltas.reshape(n, deltas.shape[1] // 4, 4)  # (N, k, 4)
        widths = (boxes[:, 2] - boxes[:, 0])[:, None]  # (N, 1)
        heights = (boxes[:, 3] - boxes[:, 1])[:, None]
        ctr_x = boxes[:, 0, None] + 0.5 * widths
        ctr_y = boxes[:, 1, None] + 0.5 * heights
        wx, wy, ww, wh = self.weights
        dx, dy = deltas[..., 0] / wx, deltas[..., 1] / wy  # (N, k)
        dw = (deltas[..., 2] / ww).clamp(max=self.clamp)
        dh = (deltas[..., 3] / wh).clamp(max=self.clamp)
        cx, cy = dx * widths + ctr_x, dy * heights + ctr_y
        w, h = torch.exp(dw) * widths, torch.exp(dh) * heights
        out = torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)  # (N, k, 4)
        return out.reshape(n, 4 * deltas.shape[1])  # (N, 4k)

    def __repr__(self) -> str:
        return f"BoxCoder(weights={self.weights}, clamp={self.clamp:.4f})"
