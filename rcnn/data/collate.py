"""Batching for detection: images keep their own sizes (padding happens inside the model)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor


def collate_detection(
    batch: Sequence[tuple[Tensor, dict[str, Any]]],
) -> tuple[list[Tensor], list[dict[str, Any]]]:
    """``[(image (3, H_i, W_i), target_i), ...] -> ([image_i, ...], [target_i, ...])``, sizes unchanged."""
    images = [item[0] for item in batch]
    targets = [item[1] for item in batch]
    return images, targets
