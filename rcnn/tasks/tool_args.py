"""Command-line arguments shared by the tools that run a model, beside :mod:`rcnn.tasks.cli`:
``--device NAME`` (:func:`add_device_argument`), which :func:`with_device` turns into the config override
``solver.device=NAME``, checked like any other; the training tools' ``--resume [PATH]`` / ``--overwrite``
(:func:`add_resume_arguments`, :func:`check_resume_arguments`)."""

from __future__ import annotations

import argparse
import os


def add_resume_arguments(parser: argparse.ArgumentParser) -> None:
    """``--resume [PATH]`` (PATH, or without it ``output.dir``'s ``last_checkpoint``) and ``--overwrite``."""
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="PATH",
        help="continue training: from PATH, or without PATH from output.dir's last_checkpoint",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="start over in an output.dir that holds a previous run"
    )


def check_resume_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse ``--resume`` with ``--overwrite``; give back the override that ``--resume``'s optional PATH
    swallowed (``--resume solver.max_iter=10``: resume the latest checkpoint with that override)."""
    if args.resume and args.overwrite:
        parser.error("--resume continues a run, --overwrite starts over: give one of them")
    if args.resume and "=" in args.resume and not os.path.exists(args.resume):
        args.overrides.insert(0, args.resume)
        args.resume = "latest"


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device NAME``: overrides ``solver.device`` (auto, cpu, cuda, cuda:1, ...)."""
    parser.add_argument("--device", default=None, help="overrides solver.device (auto, cpu, cuda, cuda:N)")


def with_device(overrides: list[str] | None, device: str | None) -> list[str]:
    """``overrides`` plus ``solver.device=<device>`` when a device was given (checked like any override)."""
    return [*(overrides or []), *([f"solver.device={device}"] if device else [])]
