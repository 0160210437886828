"""Hooks: what a training run does around the :class:`rcnn.engine.trainer.Trainer` loop's iterations.

    trainer = Trainer(model, loader, ..., hooks=[
        PeriodicEval(iters_per_epoch, evaluate),                       # evaluate(trainer) -> dict
        PlateauLR(plateau, iters_per_epoch, lambda: evaluation.results["val_top1_err"]),
        PeriodicCheckpoint(iters_per_epoch, lambda it: f"checkpoint_{it // iters_per_epoch:04d}"),
    ])

A hook has three methods, each called with the trainer: ``before_train`` (after resuming, before the
first batch is drawn), ``after_step`` (after every iteration, in list order; ``trainer.iter`` counts the
completed iterations) and ``after_train`` (always, also when training stops with an exception). Subclass
:class:`Hook` and override what you need (plain ``f(trainer)`` callables after every iteration are the
trainer's ``callbacks``). No registry: a run lists its hooks.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from torch.optim.lr_scheduler import LRScheduler

if TYPE_CHECKING:  # the trainer imports this module
    from rcnn.engine.trainer import Trainer

logger = logging.getLogger(__name__)


class Hook:
    """Does nothing; override ``before_train`` / ``after_step`` / ``after_train``."""

    def before_train(self, trainer: Trainer) -> None:
        pass

    def after_step(self, trainer: Trainer) -> None:
        pass

    def after_train(self, trainer: Trainer) -> None:
        pass


def _due(trainer: Trainer, period: int) -> bool:
    return period > 0 and trainer.iter % period == 0


class PeriodicEval(Hook):
    """``results = evaluate(trainer)`` every ``period`` iterations (an epoch: per-epoch evaluation).

    The model is put back in training mode afterwards; ``results`` keeps the latest numbers ({} before
    the first evaluation of this run).
    """

    def __init__(self, period: int, evaluate: Callable[[Trainer], dict[str, Any]]) -> None:
        self.period = int(period)
        self.evaluate = evaluate
        self.results: dict[str, Any] = {}

    def after_step(self, trainer: Trainer) -> None:
        if not _due(trainer, self.period):
            return
        try:
            self.results = dict(self.evaluate(trainer))
        finally:
            trainer.model.train()


class PlateauLR(Hook):
    """``scheduler.step(metric())`` every ``period`` iterations once the warm-up is over.

    ``scheduler`` is a :class:`rcnn.engine.lr_scheduler.WarmupReduceLROnPlateau` counting periods; the
    trainer steps its warm-up per iteration through :class:`rcnn.engine.lr_scheduler.WarmupOnly`. Put
    this hook after the one computing the metric.
    """

    def __init__(self, scheduler: LRScheduler, period: int, metric: Callable[[], float]) -> None:
        self.scheduler = scheduler
        self.period = int(period)
        self.metric = metric

    def after_step(self, trainer: Trainer) -> None:
        if _due(trainer, self.period) and self.scheduler.last_epoch >= self.scheduler.warmup_steps:
            self.scheduler.step(self.metric())


class PeriodicCheckpoint(Hook):
    """A checkpoint named ``name(iteration)`` every ``period`` iterations (after the hooks before it).

    ``keep_last``: the previous checkpoint this hook wrote in this run is removed once the new one is in
    place (checkpoints of earlier runs are never touched).
    """

    def __init__(self, period: int, name: Callable[[int], str], *, keep_last: bool = True) -> None:
        self.period = int(period)
        self.name = name
        self.keep_last = keep_last
        self.last_saved = ""

    def after_step(self, trainer: Trainer) -> None:
        if not _due(trainer, self.period):
            return
        path = trainer.save_checkpoint(self.name(trainer.iter))
        previous, self.last_saved = self.last_saved, path
        if self.keep_last and trainer.is_main and previous and previous != path and os.path.isfile(previous):
            os.remove(previous)
