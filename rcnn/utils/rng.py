"""Random-number generators: seed them all, and capture / restore their state for exact resume.

    seed_all(cfg.solver.seed + rank)
    state = capture_rng_state()          # Python random, NumPy's global generator, torch CPU and CUDA
    restore_rng_state(state)

The captured state loads with ``torch.load(weights_only=True)``. Imports nothing of rcnn.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)


def seed_all(seed: int) -> None:
    """Seed Python ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    Under DDP seed with ``seed + rank``: DDP copies rank 0's initial weights to every process anyway,
    and distinct streams keep dropout and augmentation independent across processes.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict[str, Any]:
    """The state of Python ``random``, NumPy's global generator, torch CPU and (if present) CUDA."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`capture_rng_state` captured (CUDA only when the device count matches)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            logger.warning(
                "not restoring CUDA RNG state: saved for %d devices, %d present",
                len(cuda),
                torch.cuda.device_count(),
            )
