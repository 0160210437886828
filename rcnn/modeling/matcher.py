"""Assigning ground-truth boxes to anchors or proposals by IoU.

Shape shorthand:
    G: ground-truth boxes; P: predictions (anchors or proposals).
"""

from __future__ import annotations

import torch
from torch import Tensor


class Matcher:
    """For each prediction, the index of its best-overlapping ground-truth box, or a negative code.

    ``matches[p] = g`` when ``max IoU >= high``; :attr:`BELOW_LOW_THRESHOLD` (-1, background) when it is
    ``< low``; :attr:`BETWEEN_THRESHOLDS` (-2, ignored) in between. With ``allow_low_quality_matches``
    every ground-truth box's best prediction(s) (ties included, IoU > 0) are matched too, so that no box
    is left without a positive (Faster R-CNN's "anchor with the highest IoU" rule).
    """

    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold: float, low_threshold: float, allow_low_quality_matches: bool = False):
        if low_threshold > high_threshold:
            raise ValueError(f"low_threshold {low_threshold} must be <= high_threshold {high_threshold}")
        self.high_threshold = float(high_threshold)
        self.low_threshold = float(low_threshold)
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix: Tensor) -> Tensor:
        """match_quality_matrix: (G, P) IoUs. Returns (P,) int64 in ``[-2, G)``.

        With no ground truth (G == 0) every prediction is background.
        """
        num_gt, num_pred = match_quality_matrix.shape
        if num_gt == 0:
            return torch.full(
                (num_pred,), self.BELOW_LOW_THRESHOLD, dtype=torch.int64, device=match_quality_matrix.device
            )
        if num_pred == 0:
            return torch.empty((0,), dtype=torch.int64, device=match_quality_matrix.device)
        matched_vals, best_gt = match_quality_matrix.max(dim=0)  # (P,), (P,)
        below = torch.full_like(best_gt, self.BELOW_LOW_THRESHOLD)
        between = torch.full_like(best_gt, self.BETWEEN_THRESHOLDS)
        matches = torch.where(matched_vals >= self.high_threshold, best_gt, between)
        matches = torch.where(matched_vals < self.low_threshold, below, matches)
        if self.allow_low_quality_matches:
            highest_per_gt = match_quality_matrix.max(dim=1).values[:, None]  # (G, 1)
            is_best = (match_quality_matrix == highest_per_gt) & (highest_per_gt > 0)  # (G, P)
            matches = torch.where(is_best.any(dim=0), best_gt, matches)
        return matches

    def __repr__(self) -> str:
        return (
            f"Matcher(high={self.high_threshold}, low={self.low_threshold}, "
            f"allow_low_quality_matches={self.allow_low_quality_matches})"
        )
