"""SIGINT / SIGTERM as a stop request: finish the iteration, save a checkpoint, then stop.

    stop = StopSignals()
    with stop.handlers():                  # main thread only; the previous handlers come back after
        while not stop.requested: ...
    raise TrainingInterrupted(stop.signum, iteration, checkpoint_path)

A second signal while a stop is pending aborts at once (``KeyboardInterrupt``, no checkpoint).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT / SIGTERM after saving ``checkpoint`` at ``iteration``.

    ``exit_code`` is ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM), as a shell reports it.
    """

    def __init__(self, signum: int, iteration: int, checkpoint: str | None) -> None:
        self.signum = signum
        self.iteration = iteration
        self.checkpoint = checkpoint
        self.exit_code = 128 + signum
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        where = f"checkpoint saved to {checkpoint}" if checkpoint else "no checkpoint written"
        super().__init__(f"training stopped by {name} after iteration {iteration}; {where} (resume with it)")

    def __str__(self) -> str:
        return str(self.args[0])


class StopSignals:
    """The pending stop request: ``signum`` (None while there is none)."""

    def __init__(self) -> None:
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def request(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum

    def clear(self) -> None:
        self.signum = None

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # second signal: stop now, without a checkpoint
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} received twice: aborting")
        logger.warning(
            "%s received: stopping after the current iteration with a checkpoint (send again to abort)",
            signal.Signals(signum).name,
        )
        self.request(signum)

    @contextlib.contextmanager
    def handlers(self, enabled: bool = True) -> Iterator[None]:
        """Route SIGINT / SIGTERM to :meth:`request` inside the block (main thread only)."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
