"""Checkpoints of a training run: ``<name>.pth`` files and the ``last_checkpoint`` pointer.

    ckpt = Checkpointer("outputs/run")
    ckpt.save("model_0001000", model=model.state_dict(), iteration=1000)  # outputs/run/model_0001000.pth
    ckpt.latest()                       # -> "outputs/run/model_0001000.pth" (or None: nothing saved yet)
    state = ckpt.load(ckpt.latest())    # tensors on the CPU

A checkpoint is written atomically (:func:`rcnn.utils.io.atomic_save`), so a crash never leaves a
truncated ``.pth`` behind; the ``last_checkpoint`` pointer (one line: the file name) is written the same
way and only after the checkpoint itself is in place.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rcnn.utils.io import atomic_save, atomic_write_text, load_checkpoint

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last_checkpoint"


def default_checkpoint_name(iteration: int, kind: str) -> str | None:
    """The trainer's checkpoint names: ``model_<iteration>`` for the periodic and the interrupted
    checkpoint, ``model_final`` at the end. ``kind`` is ``"period"``, ``"interrupted"`` or ``"final"``;
    a naming function returning None for a kind writes none (the interrupted one is always written)."""
    return "model_final" if kind == "final" else f"model_{iteration:07d}"


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

    def save(self, name: str, /, **state: Any) -> str:
        """Write ``state`` as ``<output_dir>/<name>.pth`` atomically, then point ``last_checkpoint`` at it.

        ``name`` is positional-only, so a state may hold an entry called ``name`` (a classifier's)."""
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
