"""Text logs and metrics for training runs.

    logger = setup_logger("outputs/run", rank=get_rank())   # console (rank 0 only) + outputs/run/log.txt
    with MetricsWriter("outputs/run") as metrics:            # metrics.jsonl + TensorBoard, rank 0 only
        metrics.write({"loss": 0.7, "lr": 0.01}, step=20)    # {"iteration": 20, "loss": 0.7, "lr": 0.01}

``metrics.jsonl`` holds one JSON object per line: the step under ``step_key`` ("iteration" for the
detector trainer, "epoch" for classifiers) and the values logged at that step. A writer created with
``purge_after=N`` (a resumed run) first drops the lines of steps after N that an interrupted run had
already logged, so the file reads as one run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Mapping
from typing import Any

from rcnn.utils.comm import get_rank
from rcnn.utils.io import atomic_write_text

_FORMAT = "[%(asctime)s %(name)s %(levelname)s] %(message)s"
_DATEFMT = "%m/%d %H:%M:%S"
DEFAULT_LOGGERS = ("rcnn", "backbones", "tools", "__main__")


def setup_logger(
    output_dir: str | os.PathLike | None = None,
    rank: int | None = None,
    *,
    names: tuple[str, ...] = DEFAULT_LOGGERS,
    level: int = logging.INFO,
) -> logging.Logger:
    """Configure the loggers ``names`` (the packages' loggers by default) and return the first.

    Rank 0 logs to stderr and to ``<output_dir>/log.txt``; other ranks log only to
    ``<output_dir>/log_rank<r>.txt``. Calling it again replaces the handlers it installed before.
    """
    rank = get_rank() if rank is None else rank
    formatter = logging.Formatter(_FORMAT, datefmt=_DATEFMT)
    handlers: list[logging.Handler] = []
    if rank == 0:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(formatter)
        handlers.append(console)
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        name = "log.txt" if rank == 0 else f"log_rank{rank}.txt"
        file_handler = logging.FileHandler(os.path.join(output_dir, name), encoding="utf-8")
        file_handler.setFormatter(formatter)
        handlers.append(file_handler)
    for logger_name in names:
        logger = logging.getLogger(logger_name)
        for old in [h for h in logger.handlers if getattr(h, "_rcnn_handler", False)]:
            logger.removeHandler(old)
            old.close()
        logger.setLevel(level)
        for handler in handlers:
            handler._rcnn_handler = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
    return logging.getLogger(names[0])


def _purge_jsonl(path: str, step_key: str, after: int) -> None:
    """Drop the lines of ``path`` whose ``step_key`` is above ``after`` (rewritten atomically)."""
    if not os.path.isfile(path):
        return
    kept = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
            if isinstance(record, dict) and record.get(step_key, -math.inf) > after:
                continue
            kept.append(line if line.endswith("\n") else line + "\n")
    atomic_write_text("".join(kept), path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # tensors and numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    return value


class MetricsWriter:
    """Appends metrics to ``<output_dir>/metrics.jsonl`` and TensorBoard event files.

    Only the main process writes (``enabled`` defaults to ``rank == 0``); elsewhere every method is a
    no-op. ``tensorboard=False`` skips the event files. Close it (or use it as a context manager).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike,
        *,
        step_key: str = "iteration",
        purge_after: int | None = None,
        tensorboard: bool = True,
        enabled: bool | None = None,
    ) -> None:
        self.output_dir = os.fspath(output_dir)
        self.step_key = step_key
        self.enabled = get_rank() == 0 if enabled is None else enabled
        self.path = os.path.join(self.output_dir, "metrics.jsonl")
        self._file = None
        self._tb = None
        if not self.enabled:
            return
        os.makedirs(self.output_dir, exist_ok=True)
        if purge_after is not None:
            _purge_jsonl(self.path, step_key, purge_after)
        self._file = open(self.path, "a", encoding="utf-8")  # closed in close()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge_step = purge_after + 1 if purge_after is not None else None
            self._tb = SummaryWriter(log_dir=self.output_dir, purge_step=purge_step)

    def write(self, metrics: Mapping[str, Any], step: int) -> None:
        """Log ``metrics`` (numbers, scalar tensors, or strings for the JSON line only) at ``step``."""
        if not self.enabled or self._file is None:
            return
        record = {self.step_key: int(step)}
        record.update({k: _jsonable(v) for k, v in metrics.items()})
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in metrics.items():
                value = value.item() if hasattr(value, "item") and callable(value.item) else value
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, int(step))
            self._tb.flush()

    def close(self) -> None:
        """Flush and close the files (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(output_dir_or_file: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (or of ``<dir>/metrics.jsonl``), in file order."""
    path = os.fspath(output_dir_or_file)
    if os.path.isdir(path):
        path = os.path.join(path, "metrics.jsonl")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


class WindowedMeans:
    """Means of the values added since the last :meth:`pop_means` (a log window)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: Mapping[str, float]) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1

    def pop_means(self) -> dict[str, float]:
        """The means over the window, which then starts afresh."""
        means = {k: v / max(self.count, 1) for k, v in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


def flatten_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"<prefix>/a/b": 1}``: nested dicts flattened, keeping numbers, strings,
    booleans and one-element tensors (other values are dropped)."""
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_metrics(value, name))
        elif isinstance(value, (int, float, str, bool)):
            flat[name] = value
        elif hasattr(value, "numel") and value.numel() == 1:
            flat[name] = value.item()
    return flat


def console_loggers(bar: Any) -> list[logging.Logger]:
    """The package loggers printing to the console, to route through ``tqdm.write`` under ``bar`` (none
    when the bar is disabled)."""
    if bar.disable:
        return []
    loggers = [logging.getLogger(n) for n in DEFAULT_LOGGERS]
    return [lg for lg in loggers if any(type(h) is logging.StreamHandler for h in lg.handlers)]
