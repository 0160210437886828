"""A training run's ``output.dir``: a new run never silently replaces an earlier one.

    check_output_dir(cfg.output.dir, resume=args.resume, overwrite=args.overwrite)   # before the prologue

A folder holds a previous run when it has one of :data:`RUN_MARKERS` (a checkpoint pointer, the metrics
log, a final model). Training into it without ``--resume`` stops with :class:`OutputDirExistsError` (a
:class:`~rcnn.config.ConfigError`: one ``error:`` line, exit 2) naming the folder and the three ways on:
``--resume``, another ``output.dir``, or ``--overwrite``. With ``--overwrite`` the old ``last_checkpoint``
is removed, so that a later ``--resume`` can only continue the new run; the new run's files replace the
old ones as they are written.
"""

from __future__ import annotations

import contextlib
import os

from rcnn.config import ConfigError
from rcnn.engine.checkpoint import LAST_CHECKPOINT

RUN_MARKERS = (LAST_CHECKPOINT, "metrics.jsonl", "model_final.pth")


class OutputDirExistsError(ConfigError):
    """``output.dir`` holds a previous run and neither ``--resume`` nor ``--overwrite`` was given."""


def previous_run_files(output_dir: str | os.PathLike) -> list[str]:
    """The :data:`RUN_MARKERS` present in ``output_dir`` (empty for a new or missing folder)."""
    return [name for name in RUN_MARKERS if os.path.isfile(os.path.join(output_dir, name))]


def check_output_dir(
    output_dir: str | os.PathLike, *, resume: object = None, overwrite: bool = False
) -> None:
    """Refuse to start a fresh run in a folder that holds a previous one (see the module docstring).

    ``resume``: the tool's ``--resume`` value (None when not given); ``overwrite``: ``--overwrite``.
    """
    found = previous_run_files(output_dir)
    if resume is not None or not found:
        return
    if not overwrite:
        raise OutputDirExistsError(
            f"output.dir={os.fspath(output_dir)} holds a previous run ({', '.join(found)}): continue it with "
            "--resume, train into another output.dir=..., or start over with --overwrite"
        )
    with contextlib.suppress(FileNotFoundError):  # several processes may remove it at once
        os.remove(os.path.join(output_dir, LAST_CHECKPOINT))
