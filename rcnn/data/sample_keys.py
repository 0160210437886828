"""Sample keys: a dataset index together with the seed of that sample's random augmentation.

    key = SampleKey(index=5, seed=draw_seed(run_seed, position))
    dataset[key]          # item 5, augmented with draws from key.seed only: the same in every process
    dataset[5]            # plain indices keep working (evaluation, tests, one-off use)

The training samplers (:mod:`rcnn.data.samplers`) yield keys whose seed is a function of the run's seed
and the position in the data stream (the global stream position, or epoch / rank / position in the
epoch). The datasets run their transforms with generators seeded from the key, so an augmentation
depends on nothing but (seed, position, index): not on which process (main or a DataLoader worker) loads
the sample, not on what was drawn before, and a resumed run draws exactly what the uninterrupted one did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
import torch

__all__ = ["SampleKey", "draw_seed", "split_key", "torch_seeded"]


class SampleKey(NamedTuple):
    """``dataset[SampleKey(index, seed)]``: the item at ``index``, its random draws seeded by ``seed``."""

    index: int
    seed: int


def draw_seed(seed: int, *position: int) -> int:
    """A 64-bit seed for the sample at ``position`` (one or more non-negative integers, e.g. the stream
    position, or ``epoch, rank, i``) of the run seeded with ``seed``. Uses ``numpy.random.SeedSequence``
    (``spawn_key=position``), so nearby seeds and positions give unrelated streams."""
    sequence = np.random.SeedSequence(int(seed) % 2**64, spawn_key=tuple(int(p) for p in position))
    return int(sequence.generate_state(1, np.uint64)[0])


def split_key(key: int | SampleKey) -> tuple[int, int | None]:
    """``(index, seed)`` of a key; ``(index, None)`` for a plain integer index."""
    if isinstance(key, SampleKey):
        return int(key.index), int(key.seed)
    return int(key), None


@contextlib.contextmanager
def torch_seeded(seed: int | None) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded from ``seed``, then restore the generator's state.

    For transforms that draw from torch's global generator (torchvision's): inside the block they draw
    from ``seed`` alone, and the caller's random stream (e.g. the training process's, with
    ``num_workers=0``) is left exactly as it was. ``None``: no change, the block draws as usual.
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed) % 2**64)
        yield
