"""The loss dict of one training iteration: check it, sum it, average it over processes, check it is finite.

total = total_loss(model(images, targets))                   # the sum of the scalar losses
local, reduced, stop = reduce_losses(loss_dict, total, stop_requested)
check_finite(reduced, local, iteration_position(12, iters_per_epoch=0))   # FloatingPointError
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from rcnn.utils import comm as du


def total_loss(loss_dict: Any) -> Tensor:
    """The float32 sum of ``loss_dict``'s scalar tensors; anything else is a ``TypeError``."""
    if not isinstance(loss_dict, dict) or not loss_dict:
        raise TypeError(f"model(images, targets) must return a non-empty dict of losses, got {loss_dict!r}")
    for name, value in loss_dict.items():
        if not isinstance(value, Tensor) or value.numel() != 1:
            raise TypeError(f"loss {name!r} must be a scalar tensor, got {value!r}")
    return sum(v.float().reshape(()) for v in loss_dict.values())


def reduce_losses(
    loss_dict: dict[str, Tensor], total: Tensor, stop_requested: bool
) -> tuple[dict[str, float], dict[str, float], bool]:
    """``(this process's losses, their average over processes, stop)``, each with ``total_loss``.

    Under DDP the processes also agree on stopping in the same collective: ``stop`` is True when any
    process asked."""
    values = {k: v.detach().float().reshape(()) for k, v in loss_dict.items()}
    values["total_loss"] = total.detach().float()
    keys = sorted(values)
    local = dict(zip(keys, torch.stack([values[k] for k in keys]).tolist()))
    world_size = du.get_world_size()
    if world_size == 1:
        return local, dict(local), stop_requested
    flag = torch.tensor(float(stop_requested) * world_size, device=total.device)
    reduced = du.all_reduce_dict({**values, "~stop": flag}, average=True)  # "~stop": number of ranks
    stop = reduced.pop("~stop")
    numbers = torch.stack([reduced[k] for k in keys] + [stop]).tolist()
    return local, dict(zip(keys, numbers[:-1])), numbers[-1] > 0


def iteration_position(iteration: int, iters_per_epoch: int = 0) -> str:
    """``iteration N`` (1-based), or ``epoch E, iteration i/n`` when ``iters_per_epoch`` is n > 0."""
    n = iters_per_epoch
    if n <= 0:
        return f"iteration {iteration}"
    return f"epoch {(iteration - 1) // n + 1}, iteration {(iteration - 1) % n + 1}/{n}"


def check_finite(reduced: dict[str, float], local: dict[str, float], where: str) -> None:
    """``FloatingPointError`` naming ``where`` and every term when a reduced loss is NaN or infinite."""
    if all(math.isfinite(v) for v in reduced.values()):
        return
    terms = ", ".join(f"{k}={v}" for k, v in sorted(reduced.items()))
    message = f"non-finite loss {reduced['total_loss']} at {where}: {terms}"
    world_size = du.get_world_size()
    if world_size > 1:
        rank_terms = ", ".join(f"{k}={v}" for k, v in sorted(local.items()))
        message += f" (averaged over {world_size} processes; rank {du.get_rank()}: {rank_terms})"
    raise FloatingPointError(message)
