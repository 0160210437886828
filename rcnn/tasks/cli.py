"""The tools' shared prologue: the config from ``--config`` and ``section.key=value`` overrides, logging,
``config.yaml`` in ``output.dir``, seeding, torch.distributed, and ONE mapping of exceptions to exit codes.

    def main(argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(description=__doc__)
        cli.add_config_arguments(parser)
        args = parser.parse_args(argv)
        return cli.run_tool(lambda: train(args))

    def train(args: argparse.Namespace) -> None:
        cfg = cli.load_tool_config(args, DetectionConfig)
        with cli.session(cfg, distributed=True) as run:   # logging, config.yaml, seed_all(seed + rank)
            ...                                            # run.rank, run.world_size, run.device

Exit codes (:func:`run_tool`), the same in every tool:

- 0: done;
- 1: training diverged (``FloatingPointError``: a non-finite loss);
- 2: a user error, one line ``error: ...`` on stderr and no traceback: a bad config
  (:class:`~rcnn.config.ConfigError`), bad data (:class:`~rcnn.data.errors.DatasetError`), a proposals
  folder or an R-CNN feature cache made with other parameters
  (:class:`~rcnn.proposals.cache.ProposalCacheError`,
  :class:`~rcnn.detectors.rcnn2014.feature_cache.FeatureCacheError`), a missing file
  (``FileNotFoundError``), a checkpoint that does not fit (:class:`~rcnn.utils.io.CheckpointError`), plus
  any types the tool names in ``user_errors``;
- ``128 + signal``: stopped by SIGINT / SIGTERM (:class:`~rcnn.engine.trainer.TrainingInterrupted`
  carries its ``exit_code``; a bare Ctrl-C outside training is 130).

Any other exception is a bug: it propagates with its traceback. ``--debug`` (:func:`add_debug_argument`)
or ``RCNN_DEBUG=1`` in the environment re-raise user errors too, traceback included.

An error raised in a DataLoader worker reaches the user as the original one-line message: torch re-raises
it in the main process as the same type with the worker's traceback as its message
(:func:`user_message` keeps the last line). Before the status is returned, the frames of the traceback are
cleared and collected, so the loader's worker processes are shut down there (their iterator is freed)
instead of being killed at interpreter exit (a second traceback, ``DataLoader worker ... is killed by
signal``, after a wait).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from rcnn.config import ConfigError, load_config, save_config
from rcnn.data.errors import DatasetError
from rcnn.detectors.rcnn2014.feature_cache import FeatureCacheError
from rcnn.engine.logging import setup_logger
from rcnn.engine.trainer import TrainingInterrupted
from rcnn.proposals.cache import ProposalCacheError
from rcnn.utils import comm
from rcnn.utils.io import CheckpointError
from rcnn.utils.rng import seed_all

logger = logging.getLogger(__name__)

T = TypeVar("T")

USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    DatasetError,
    ProposalCacheError,
    FeatureCacheError,
    FileNotFoundError,
    CheckpointError,
)
EXIT_OK, EXIT_DIVERGED, EXIT_USER_ERROR, EXIT_SIGINT = 0, 1, 2, 130
DEBUG_ENV = "RCNN_DEBUG"
_WORKER_PREFIX = "Caught "  # torch.utils.data's ExceptionWrapper: "Caught X in DataLoader worker process N."


def debug_requested() -> bool:
    """True when ``RCNN_DEBUG`` is set to anything but "", "0", "false", "no"."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """``--debug``: user errors show their traceback (the same as ``RCNN_DEBUG=1``)."""
    parser.add_argument("--debug", action="store_true", help=f"show tracebacks (or set {DEBUG_ENV}=1)")


def user_message(exc: BaseException) -> str:
    """The one-line message of ``exc``; for an error re-raised from a DataLoader worker, the original
    message (the last line of the worker's traceback, without its ``module.Type: `` prefix)."""
    text = str(exc).strip()
    if text.startswith(_WORKER_PREFIX) and "Original Traceback" in text:
        last = text.splitlines()[-1]
        name = type(exc).__name__
        for prefix in (f"{type(exc).__module__}.{name}: ", f"{name}: "):
            if last.startswith(prefix):
                return last[len(prefix) :]
        return last.partition(": ")[2] or last
    return text


def error(message: object) -> None:
    """Print a user error as the one line ``error: ...`` on stderr."""
    text = user_message(message) if isinstance(message, BaseException) else str(message)
    print(f"error: {text}", file=sys.stderr)


def _release(exc: BaseException) -> None:
    """Free what the frames of ``exc``'s traceback hold (a DataLoader iterator shuts its workers down when
    it is collected), so nothing is left for the interpreter's exit handlers."""
    while exc is not None:
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
            exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__
    gc.collect()


def exit_code(exc: BaseException, user_errors: tuple[type[BaseException], ...] = ()) -> int | None:
    """The exit status for ``exc`` (see the module docstring); None for an unexpected exception."""
    if isinstance(exc, TrainingInterrupted):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_SIGINT
    if isinstance(exc, FloatingPointError):
        return EXIT_DIVERGED
    if isinstance(exc, (*USER_ERRORS, *user_errors)):
        return EXIT_USER_ERROR
    return None


def run_tool(
    fn: Callable[[], int | None],
    *,
    user_errors: tuple[type[BaseException], ...] = (),
    debug: bool = False,
) -> int:
    """Call ``fn()`` and turn its outcome into the tool's exit status: its return value (None: 0), or the
    status of the exception it raised, reported in one line. Unexpected exceptions propagate, and so does
    every exception with ``debug`` (the tool's ``--debug``) or ``RCNN_DEBUG=1``."""
    try:
        status = fn()
    except BaseException as exc:  # noqa: BLE001 - mapped below, or re-raised unchanged
        code = exit_code(exc, user_errors)
        if code is None or debug or debug_requested():
            raise
        if isinstance(exc, KeyboardInterrupt):
            print(f"\ninterrupted: {exc}" if str(exc) else "\ninterrupted", file=sys.stderr)
        else:
            error(exc)
        _release(exc)
        return code
    return EXIT_OK if status is None else int(status)


# ---------------------------------------------------------------------------------------------- config
def add_config_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--config FILE`` and the positional ``section.key=value`` overrides."""
    parser.add_argument("--config", required=required, help="YAML config (configs/*/*.yaml)")
    parser.add_argument("overrides", nargs="*", help="config overrides, section.key=value")
    add_debug_argument(parser)


def load_tool_config(args: argparse.Namespace, schema: type[T]) -> T:
    """The typed config of ``args.config`` with ``args.overrides`` applied (``ConfigError`` otherwise)."""
    return load_config(args.config, schema, list(args.overrides or []))


# --------------------------------------------------------------------------------------------- session
@dataclass
class Session:
    """What :func:`session` set up: this process's rank, the number of processes, the device."""

    output_dir: str
    rank: int
    world_size: int
    device: torch.device


@contextlib.contextmanager
def session(cfg: Any, *, distributed: bool = False, device: str | None = None) -> Iterator[Session]:
    """The prologue of a tool that runs ``cfg`` (a config with ``output``, ``solver.seed`` and
    ``solver.device``): with ``distributed``, join torchrun's process group; log to ``output.dir/log.txt``;
    rank 0 saves the resolved ``config.yaml`` there; seed every generator with ``solver.seed + rank``.
    On exit the process group is destroyed (after a barrier only when leaving without an exception: an
    error may be this rank's alone)."""
    device_name = device or cfg.solver.device
    if distributed:
        comm.init_distributed(device_name)
    try:
        rank, world_size = comm.get_rank(), comm.get_world_size()
        out = cfg.output.dir
        os.makedirs(out, exist_ok=True)
        setup_logger(out, rank)
        if rank == 0:
            save_config(cfg, os.path.join(out, "config.yaml"))
        seed_all(cfg.solver.seed + rank)
        yield Session(out, rank, world_size, comm.select_device(device_name))
    finally:
        if distributed:
            comm.destroy_distributed(barrier=sys.exc_info()[0] is None)
