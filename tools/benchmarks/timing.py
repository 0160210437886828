"""How the benchmark sections time their calls: the device synchronised around each call, the compared
runs interleaved (order flipped every repetition), medians reported."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def sync(device: str) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU. Around every timed call."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def time_interleaved(
    runs: dict[str, Callable[[], object]],
    *,
    warmup: int,
    reps: int,
    device: str,
    min_seconds: float = 0.0,
    max_reps: int = 200,
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per call of each run, alternating the runs (order flipped every
    repetition) after ``warmup`` calls of each: ``reps`` repetitions, more (up to ``max_reps``) until every
    run has been timed for ``min_seconds`` in all, so that fast cases get medians of many calls."""
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    rep = 0
    while rep < reps or (rep < max_reps and min(sum(wall[n]) for n in names) < min_seconds):
        for name in names if rep % 2 == 0 else names[::-1]:
            sync(device)
            w0, c0 = time.perf_counter(), time.process_time()
            runs[name]()
            sync(device)
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
        rep += 1
    return {n: (statistics.median(wall[n]), statistics.median(cpu[n])) for n in names}
