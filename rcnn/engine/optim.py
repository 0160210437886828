"""The optimizer of the papers: SGD with momentum and weight decay over the trainable parameters."""

from __future__ import annotations

import torch
from torch import nn

_NORM_TYPES = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.LocalResponseNorm,
    nn.modules.instancenorm._InstanceNorm,
)


def build_sgd(
    model: nn.Module,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
    *,
    weight_decay_norm: float | None = None,
    nesterov: bool = False,
) -> torch.optim.SGD:
    """SGD over the parameters with ``requires_grad`` (frozen ones are left out).

    ``weight_decay_norm`` is the decay of normalisation layers' weights and biases (batch/group/layer
    norm); None uses ``weight_decay`` for them too. Parameters shared between modules appear once.
    """
    if lr <= 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        is_norm = isinstance(module, _NORM_TYPES)
        for param in module.parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            (no_decay if is_norm and weight_decay_norm is not None else decay).append(param)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters")
    groups = [{"params": decay, "weight_decay": weight_decay}] if decay else []
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": weight_decay_norm})
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
