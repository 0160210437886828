"""Learning-rate schedules: linear warm-up followed by step decay or a cosine, per iteration or per epoch.

Detection (per iteration, ``scheduler.step()`` after every optimizer step)::

    scheduler = build_lr_scheduler(optimizer, "step", total_steps=9000, steps=[6000, 8000], gamma=0.1,
                                   warmup_steps=500, warmup_factor=0.001)

Classification (per epoch, ``scheduler.step()`` after every epoch; ``"plateau"`` takes
``scheduler.step(val_loss)``)::

    scheduler = build_lr_scheduler(optimizer, cfg.lr_schedule, total_steps=cfg.epochs, steps=cfg.steps,
                                   gamma=cfg.gamma, warmup_steps=cfg.warmup_epochs, patience=...)

The step and cosine schedules are ``torch.optim.lr_scheduler.LambdaLR`` with a picklable factor object,
so ``state_dict()`` / ``load_state_dict()`` restore them exactly. The lr at step ``t`` is
``base_lr * factor(t)``: during warm-up (``t < warmup_steps``) the factor rises linearly from
``warmup_factor`` to 1, then it is ``gamma ** (number of steps <= t)`` (or the cosine).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau

SCHEDULES = ("step", "cosine", "plateau", "constant")


def warmup_factor_at(step: int, warmup_steps: int, warmup_factor: float) -> float:
    """Linear warm-up multiplier: ``warmup_factor`` at step 0, rising to 1 at ``warmup_steps``."""
    if step >= warmup_steps:
        return 1.0
    alpha = step / warmup_steps
    return warmup_factor * (1.0 - alpha) + alpha


class WarmupMultiStep:
    """``factor(t) = warmup(t) * gamma ** bisect_right(steps, t)`` (a picklable ``LambdaLR`` lambda)."""

    def __init__(
        self, steps: Sequence[int], gamma: float = 0.1, warmup_steps: int = 0, warmup_factor: float = 0.001
    ) -> None:
        steps = [int(s) for s in steps]
        if steps != sorted(steps):
            raise ValueError(f"lr steps must be increasing, got {steps}")
        self.steps = steps
        self.gamma = float(gamma)
        self.warmup_steps = int(warmup_steps)
        self.warmup_factor = float(warmup_factor)

    def __call__(self, step: int) -> float:
        decay = self.gamma ** bisect.bisect_right(self.steps, step)
        return warmup_factor_at(step, self.warmup_steps, self.warmup_factor) * decay


class WarmupCosine:
    """``factor(t) = warmup(t) * (min_factor + (1 - min_factor) * (1 + cos(pi * t / total)) / 2)``."""

    def __init__(
        self, total_steps: int, warmup_steps: int = 0, warmup_factor: float = 0.001, min_factor: float = 0.0
    ) -> None:
        if total_steps <= 0:
            raise ValueError(f"cosine schedule needs total_steps > 0, got {total_steps}")
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.warmup_factor = float(warmup_factor)
        self.min_factor = float(min_factor)

    def __call__(self, step: int) -> float:
        t = min(step, self.total_steps) / self.total_steps
        cosine = self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * t))
        return warmup_factor_at(step, self.warmup_steps, self.warmup_factor) * cosine


class WarmupReduceLROnPlateau(ReduceLROnPlateau):
    """``ReduceLROnPlateau`` after a linear warm-up of ``warmup_steps`` epochs.

    During warm-up ``step(metric)`` ignores the metric and sets the lr to ``base_lr * warmup(t)``;
    afterwards it is torch's plateau rule (divide by ``1/factor`` after ``patience`` bad epochs).
    """

    def __init__(
        self, optimizer: Optimizer, *, warmup_steps: int = 0, warmup_factor: float = 0.001, **kwargs: Any
    ) -> None:
        self.warmup_steps = int(warmup_steps)
        self.warmup_factor = float(warmup_factor)
        self.target_lrs = [float(g["lr"]) for g in optimizer.param_groups]
        super().__init__(optimizer, **kwargs)
        self._set_warmup_lr(0)

    def _set_warmup_lr(self, step: int) -> None:
        factor = warmup_factor_at(step, self.warmup_steps, self.warmup_factor)
        for group, lr in zip(self.optimizer.param_groups, self.target_lrs):
            group["lr"] = lr * factor
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def step(self, metrics: Any = None, epoch: int | None = None) -> None:  # type: ignore[override]
        if self.last_epoch < self.warmup_steps:
            self.last_epoch += 1
            self._set_warmup_lr(self.last_epoch)
            return
        if metrics is None:
            raise ValueError("plateau schedule: step(metric) needs the validation metric")
        super().step(metrics)


def build_lr_scheduler(
    optimizer: Optimizer,
    name: str = "step",
    *,
    total_steps: int = 0,
    steps: Sequence[int] = (),
    gamma: float = 0.1,
    warmup_steps: int = 0,
    warmup_factor: float = 0.001,
    patience: int = 2,
    min_factor: float = 0.0,
    mode: str = "min",
) -> LRScheduler:
    """A scheduler by name: ``"step"`` (warm-up + multi-step decay at ``steps``), ``"cosine"`` (over
    ``total_steps``), ``"plateau"`` (divide by ``1/gamma`` after ``patience`` epochs without improvement
    of the metric passed to ``step``; ``mode="max"`` for accuracies) or ``"constant"`` (warm-up only).

    Steps count whatever the caller steps on: iterations for detection, epochs for classification.
    """
    if name == "step":
        return LambdaLR(optimizer, WarmupMultiStep(steps, gamma, warmup_steps, warmup_factor))
    if name == "cosine":
        return LambdaLR(optimizer, WarmupCosine(total_steps, warmup_steps, warmup_factor, min_factor))
    if name == "constant":
        return LambdaLR(optimizer, WarmupMultiStep([], 1.0, warmup_steps, warmup_factor))
    if name == "plateau":
        return WarmupReduceLROnPlateau(
            optimizer,
            warmup_steps=warmup_steps,
            warmup_factor=warmup_factor,
            mode=mode,
            factor=gamma,
            patience=patience,
        )
    raise ValueError(f"unknown lr schedule {name!r}: expected one of {', '.join(SCHEDULES)}")


def build_warmup_multistep_lr(
    optimizer: Optimizer,
    steps: Sequence[int],
    gamma: float = 0.1,
    warmup_iters: int = 0,
    warmup_factor: float = 0.001,
) -> LambdaLR:
    """The detection schedule of ``SolverConfig`` (``warmup_iters``, ``warmup_factor``, ``steps``,
    ``gamma``), stepped once per iteration."""
    return LambdaLR(optimizer, WarmupMultiStep(steps, gamma, warmup_iters, warmup_factor))


def current_lr(optimizer: Optimizer) -> float:
    """The lr of the first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


class WarmupOnly:
    """A per-period scheduler stepped per iteration by the trainer: ``step()`` advances ``scheduler``'s
    warm-up only (the plateau steps come from :class:`rcnn.engine.hooks.PlateauLR`). ``state_dict`` /
    ``load_state_dict`` are the wrapped scheduler's."""

    def __init__(self, scheduler: WarmupReduceLROnPlateau) -> None:
        self.scheduler = scheduler

    @property
    def last_epoch(self) -> int:
        return self.scheduler.last_epoch

    def step(self) -> None:
        if self.scheduler.last_epoch < self.scheduler.warmup_steps:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)
