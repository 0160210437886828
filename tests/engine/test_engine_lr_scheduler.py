"""Warm-up + step / cosine / plateau schedules."""

from __future__ import annotations

import math

import pytest
import torch

from rcnn.engine.lr_scheduler import (
    build_lr_scheduler,
    build_warmup_multistep_lr,
    current_lr,
    warmup_factor_at,
)


def _opt(lr: float = 1.0) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)


def _lrs(opt, sched, n):
    out = []
    for _ in range(n):
        out.append(current_lr(opt))
        opt.step()
        sched.step()
    return out


def test_warmup_then_multistep():
    opt = _opt(0.1)
    sched = build_warmup_multistep_lr(opt, steps=[6, 8], gamma=0.1, warmup_iters=4, warmup_factor=0.001)
    lrs = _lrs(opt, sched, 10)
    expected = [0.1 * (0.001 * (1 - t / 4) + t / 4) for t in range(4)] + [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    assert lrs == pytest.approx(expected, rel=1e-9)
    assert warmup_factor_at(0, 4, 0.25) == 0.25 and warmup_factor_at(4, 4, 0.25) == 1.0


def test_state_dict_restores_the_position():
    opt = _opt()
    sched = build_lr_scheduler(opt, "step", steps=[3], gamma=0.5, warmup_steps=2, warmup_factor=0.1)
    _lrs(opt, sched, 4)
    state = sched.state_dict()
    opt2 = _opt()
    sched2 = build_lr_scheduler(opt2, "step", steps=[3], gamma=0.5, warmup_steps=2, warmup_factor=0.1)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = current_lr(opt)  # the optimizer's own state_dict carries the lr
    assert _lrs(opt2, sched2, 3) == _lrs(opt, sched, 3)


def test_cosine_per_epoch():
    opt = _opt(1.0)
    sched = build_lr_scheduler(opt, "cosine", total_steps=4, warmup_steps=0)
    lrs = _lrs(opt, sched, 5)
    assert lrs == pytest.approx([0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(5)])


def test_plateau_with_warmup():
    opt = _opt(1.0)
    sched = build_lr_scheduler(opt, "plateau", gamma=0.1, patience=1, warmup_steps=2, warmup_factor=0.5)
    assert current_lr(opt) == pytest.approx(0.5)
    sched.step(10.0)  # warm-up: metric ignored
    assert current_lr(opt) == pytest.approx(0.75)
    sched.step(10.0)
    assert current_lr(opt) == pytest.approx(1.0)
    sched.step(5.0)  # best
    sched.step(5.0)  # 1 bad epoch: within patience
    assert current_lr(opt) == pytest.approx(1.0)
    sched.step(5.0)  # 2 bad epochs > patience
    assert current_lr(opt) == pytest.approx(0.1)


def test_unknown_schedule_and_unsorted_steps():
    with pytest.raises(ValueError, match="unknown lr schedule 'poly'"):
        build_lr_scheduler(_opt(), "poly")
    with pytest.raises(ValueError, match="increasing"):
        build_lr_scheduler(_opt(), "step", steps=[5, 3])
