"""Files written so that a crash never leaves a partial one, and checkpoint loading.

    atomic_save({"model": model.state_dict()}, "outputs/run/model_final.pth")
    atomic_write_text("model_final.pth\n", "outputs/run/last_checkpoint")
    atomic_write_json({"AP": 0.5}, "outputs/run/metrics.json")
    state = load_checkpoint("outputs/run/model_final.pth")      # tensors on the CPU

Every writer goes through one function: write to a temporary file in the same directory, flush and fsync
it, rename it over the final name, fsync the directory. Readers see the previous file or the complete new
one, never a partial write. Imports nothing of rcnn.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any, BinaryIO

import torch


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: not a checkpoint dict, or weights that do not fit the model
    (a user error: the message names the file)."""


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


def _new_file_mode() -> int:
    """0666 less the process's umask: the mode ``open(path, "w")`` gives a new file."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _atomic_write(path: str | os.PathLike, write: Any, binary: bool) -> str:
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.fchmod(fd, _new_file_mode())  # mkstemp makes 0600; the file gets the mode open() would give
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


def atomic_write_bytes(write: Callable[[BinaryIO], Any], path: str | os.PathLike) -> str:
    """Call ``write(f)`` on a binary file that becomes ``path`` atomically (e.g. ``lambda f: np.save(f,
    array)``; same scheme as :func:`atomic_save`). Returns ``path``."""
    return _atomic_write(path, write, binary=True)


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
        raise CheckpointError(f"{path}: expected a checkpoint dict, got {type(state).__name__}")
    return state


def atomic_write_json(obj: Any, path: str | os.PathLike, *, indent: int | None = 2) -> str:
    """``json.dump(obj)`` to ``path`` atomically, with a trailing newline. Returns ``path``."""
    return atomic_write_text(json.dumps(obj, indent=indent) + "\n", path)
