"""Folding batch norm into the convolution before it, for inference.

In eval mode batch norm is a fixed per-channel affine map,
``y = (x - mean) / sqrt(var + eps) * gamma + beta``; after a convolution ``x = w * input + b`` it can be
folded into the convolution's weights and bias:

    s = gamma / sqrt(var + eps)        w' = w * s (per output channel)        b' = (b - mean) * s + beta

which saves a pass over every activation (two for torchvision's ``FrozenBatchNorm2d``, ``x * scale +
shift`` with the scale recomputed at each call) and its temporaries. The folded network computes the same
function up to float rounding (~1e-6 relative in float32).

A convolution and a batch norm are folded when they are

* consecutive children of an ``nn.Sequential`` (ResNet stem and shortcut projections, VGG-BN features), or
* sibling attributes ``conv{suffix}`` / ``bn{suffix}`` of one module whose forward applies ``bn{suffix}`` to
  the output of ``conv{suffix}`` and uses the convolution nowhere else (ResNet / SE-ResNet / CIFAR ResNet
  blocks: ``conv1``/``bn1`` ...; GoogLeNet-BN's ``BasicConv2d``: ``conv``/``bn``), the convention of every
  network in this package.

The batch norm is replaced by ``nn.Identity`` and the convolution gains a bias. The result is for
inference: the folded weights are a different parameterisation, so training them is not the same as
training the original network.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

BatchNorms = (nn.BatchNorm2d, FrozenBatchNorm2d)


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d | FrozenBatchNorm2d) -> None:
    """Fold ``bn`` (eval statistics) into ``conv`` in place: afterwards ``conv(x) == bn(conv_before(x))``."""
    if isinstance(bn, nn.BatchNorm2d) and (bn.training or bn.running_var is None):
        raise ValueError("batch norm in training mode (or without running statistics) cannot be folded")
    if bn.running_var.numel() != conv.out_channels:
        channels = bn.running_var.numel()
        raise ValueError(f"batch norm of {channels} channels after a convolution of {conv.out_channels}")
    var, mean = bn.running_var.float(), bn.running_mean.float()
    gamma = bn.weight.float() if bn.weight is not None else torch.ones_like(var)
    beta = bn.bias.float() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma * torch.rsqrt(var + bn.eps)  # (C_out,)
    bias = conv.bias.float() if conv.bias is not None else torch.zeros_like(var)
    conv.weight.copy_((conv.weight.float() * scale.view(-1, 1, 1, 1)).to(conv.weight.dtype))
    new_bias = ((bias - mean) * scale + beta).to(conv.weight.dtype)
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias, requires_grad=conv.weight.requires_grad)
    else:
        conv.bias.copy_(new_bias)


def _sibling_pairs(module: nn.Module) -> list[tuple[str, str]]:
    children = dict(module.named_children())
    pairs = []
    for name, child in children.items():
        if isinstance(child, nn.Conv2d) and name.startswith("conv"):
            bn_name = "bn" + name[len("conv") :]
            if isinstance(children.get(bn_name), BatchNorms):
                pairs.append((name, bn_name))
    return pairs


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every (convolution, batch norm) pair of ``module`` (see the module docstring) in place; returns
    how many were folded. Batch norms in training mode (``nn.BatchNorm2d``) raise ValueError: call
    ``module.eval()`` first."""
    folded = 0
    for child in module.children():
        folded += fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, BatchNorms):
                fold_conv_bn(conv, bn)
                module[i + 1] = nn.Identity()
                folded += 1
    for conv_name, bn_name in _sibling_pairs(module):
        fold_conv_bn(getattr(module, conv_name), getattr(module, bn_name))
        setattr(module, bn_name, nn.Identity())
        folded += 1
    return folded
