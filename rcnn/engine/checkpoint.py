"""Atomic checkpoints, the ``last_checkpoint`` pointer and random-number-generator state.

    ckpt = Checkpointer("outputs/run")
    ckpt.save("model_0001000", model=model.state_dict(), iteration=1000)  # outputs/run/model_0001000.pth
    ckpt.latest()                       # -> "outputs/run/model_0001000.pth" (or None: nothing saved yet)
    state = ckpt.load(ckpt.latest())    # tensors on the CPU

A checkpoint is written to a temporary file in the same directory, flushed to disk and renamed over the
final name, so a crash never leaves a truncated ``.pth`` behind; the ``last_checkpoint`` pointer (one line:
the file name) is written the same way and only after the checkpoint itself is in place.

:func:`capture_rng_state` / :func:`restore_rng_state` snapshot every generator that training draws from
(Python ``random``, NumPy's global generator, torch CPU and CUDA) in a form that loads with
``torch.load(weights_only=True)``; :func:`seed_all` seeds them all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import tempfile
from typing import Any

import numpy as np
import torch

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last_checkpoint"


def _fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (best effort: not every platform can open directories)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str | os.PathLike, write: Any, binary: bool) -> str:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_dir(directory)
    return path


def atomic_save(obj: Any, path: str | os.PathLike) -> str:
    """``torch.save(obj, path)`` through a temporary file in the same directory, fsync and rename.

    Readers see either the previous file or the complete new one, never a partial write. Returns ``path``.
    """
    return _atomic_write(path, lambda f: torch.save(obj, f), binary=True)


def atomic_write_text(text: str, path: str | os.PathLike) -> str:
    """Write ``text`` to ``path`` atomically (same scheme as :func:`atomic_save`). Returns ``path``."""
    return _atomic_write(path, lambda f: f.write(text), binary=False)


def load_checkpoint(path: str | os.PathLike, *, weights_only: bool = True) -> dict[str, Any]:
    """Load a checkpoint onto the CPU; a missing file raises ``FileNotFoundError`` naming the path.

    ``weights_only=True`` (the default) refuses arbitrary pickled objects: checkpoints written by rcnn hold
    only tensors, numbers, strings and containers of them.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=weights_only)
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a checkpoint dict, got {type(state).__name__}")
    return state


class Checkpointer:
    """Saves ``<name>.pth`` files and the ``last_checkpoint`` pointer in ``output_dir``.

    ``enabled=False`` (e.g. on non-main distributed ranks) turns :meth:`save` into a no-op returning the
    path it would have written; :meth:`latest` and :meth:`load` work on every rank.
    """

    def __init__(self, output_dir: str | os.PathLike, *, enabled: bool = True) -> None:
        self.output_dir = os.fspath(output_dir)
        self.enabled = enabled
        self.saved: list[str] = []  # paths written by this object, oldest first

    def path(self, name: str) -> str:
        """The file ``save(name)`` writes."""
        return os.path.join(self.output_dir, name if name.endswith(".pth") else f"{name}.pth")

    def save(self, name: str, **state: Any) -> str:
        """Write ``state`` as ``<output_dir>/<name>.pth`` atomically, then point ``last_checkpoint`` at it."""
        path = self.path(name)
        if not self.enabled:
            return path
        atomic_save(state, path)
        atomic_write_text(os.path.basename(path) + "\n", os.path.join(self.output_dir, LAST_CHECKPOINT))
        self.saved.append(path)
        logger.info("saved checkpoint %s", path)
        return path

    def latest(self) -> str | None:
        """The checkpoint named by ``last_checkpoint``, or None when there is no pointer yet.

        A pointer naming a file that no longer exists raises ``FileNotFoundError``.
        """
        pointer = os.path.join(self.output_dir, LAST_CHECKPOINT)
        if not os.path.isfile(pointer):
            return None
        with open(pointer, encoding="utf-8") as f:
            name = f.read().strip()
        path = name if os.path.isabs(name) else os.path.join(self.output_dir, name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{pointer} names {name!r}, but {path} does not exist")
        return path

    def load(self, path: str | os.PathLike, *, weights_only: bool = True) -> dict[str, Any]:
        """Load ``path`` (tensors on the CPU). A missing file raises ``FileNotFoundError`` naming it."""
        return load_checkpoint(path, weights_only=weights_only)

    def resolve(self, path_or_latest: str | os.PathLike) -> str:
        """``"latest"`` -> :meth:`latest` (``FileNotFoundError`` when there is none); a path -> itself,
        checked to exist. Resuming never silently falls back to a fresh start."""
        if os.fspath(path_or_latest) == "latest":
            latest = self.latest()
            if latest is None:
                pointer = os.path.join(self.output_dir, LAST_CHECKPOINT)
                raise FileNotFoundError(f"nothing to resume: {pointer} does not exist")
            return latest
        path = os.fspath(path_or_latest)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"checkpoint to resume from not found: {path}")
        return path


# ------------------------------------------------------------------------------------------- RNG states


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
