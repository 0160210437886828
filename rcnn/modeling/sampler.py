"""Sampling a fixed-size, class-balanced minibatch of anchors or RoIs per image.

Shape shorthand:
    P: candidates (anchors or proposals) of one image; ``...``: optional leading batch dimensions.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _random_rank(candidates: Tensor) -> Tensor:
    """The position of each element in a uniformly random order of the ``candidates`` (bool, (..., P)) along
    the last dimension; non-candidates rank after all candidates."""
    keys = torch.rand(candidates.shape, device=candidates.device)
    keys = torch.where(candidates, keys, 2.0)  # non-candidates sort last
    order = keys.argsort(dim=-1)
    positions = torch.arange(keys.shape[-1], device=keys.device).expand_as(order)
    return torch.empty_like(order).scatter_(-1, order, positions)


class BalancedPositiveNegativeSampler:
    """Keeps up to ``batch_size_per_image * positive_fraction`` random positives and fills the rest of the
    ``batch_size_per_image`` with random negatives (fewer when there are not enough of either).

    ``sampler(labels (..., P))`` with ``1`` positive, ``0`` negative, ``-1`` ignored returns boolean masks
    ``(positive (..., P), negative (..., P))``. Leading dimensions are independent images, so a batch of
    images with the same number of anchors is sampled at once without a host sync.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float):
        if batch_size_per_image < 1 or not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(
                f"need batch_size_per_image >= 1 and 0 <= positive_fraction <= 1, "
                f"got {batch_size_per_image}, {positive_fraction}"
            )
        self.batch_size_per_image = int(batch_size_per_image)
        self.positive_fraction = float(positive_fraction)

    def __call__(self, labels: Tensor) -> tuple[Tensor, Tensor]:
        positive, negative = labels == 1, labels == 0
        max_pos = int(self.batch_size_per_image * self.positive_fraction)
        pos_mask = positive & (_random_rank(positive) < max_pos)
        num_neg = self.batch_size_per_image - pos_mask.sum(dim=-1, keepdim=True)  # (..., 1)
        neg_mask = negative & (_random_rank(negative) < num_neg)
        return pos_mask, neg_mask

    def __repr__(self) -> str:
        return (
            f"BalancedPositiveNegativeSampler(batch_size_per_image={self.batch_size_per_image}, "
            f"positive_fraction={self.positive_fraction})"
        )
