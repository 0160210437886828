"""Command-line arguments shared by the tools that run a model, beside :mod:`rcnn.tasks.cli`:
``--device NAME`` (:func:`add_device_argument`), which :func:`with_device` turns into the config override
``solver.device=NAME``, checked like any other."""

from __future__ import annotations

import argparse


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device NAME``: overrides ``solver.device`` (auto, cpu, cuda, cuda:1, ...)."""
    parser.add_argument("--device", default=None, help="overrides solver.device (auto, cpu, cuda, cuda:N)")


def with_device(overrides: list[str] | None, device: str | None) -> list[str]:
    """``overrides`` plus ``solver.device=<device>`` when a device was given (checked like any override)."""
    return [*(overrides or []), *([f"solver.device={device}"] if device else [])]
