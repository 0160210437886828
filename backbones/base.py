"""The feature interface every backbone offers the detectors.

A classification network is cut in two for detection, the way the R-CNN papers reused pretrained nets:

* the **trunk** (:class:`Backbone`): ``forward(images (N, 3, H, W)) -> {"s16": (N, C, H/16, W/16)}``, one
  entry per output named by its stride, and ``output_shape() -> {"s16": FeatureSpec(channels, stride)}``;
* the **region head** (:class:`BoxHead`), the network's own per-region layers (VGG/AlexNet/ZFNet: fc6-fc7;
  ResNet/SE-ResNet: the last stage + global pooling, the "C4" design; GoogLeNet: inception 5a/5b +
  pooling): ``forward(pooled (R, C, P, P)) -> (R, out_channels)`` with ``P == resolution``.

Heads are built from ``output_shape()`` and ``box_head.out_channels``, never from numbers in configs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torchvision.ops import FrozenBatchNorm2d


@dataclass(frozen=True)
class FeatureSpec:
    """Channels and stride (input pixels per feature-map cell) of one feature map."""

    channels: int
    stride: int


class BoxHead(nn.Module):
    """The network's per-region layers: ``(R, C, resolution, resolution) -> (R, out_channels)``."""

    def __init__(self, layers: nn.Module, out_channels: int, resolution: int):
        super().__init__()
        self.layers = layers
        self.out_channels = out_channels
        self.resolution = resolution  # RoI pooling output size these layers expect

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(self.layers(x), 1)


class Backbone(nn.Module):
    """A trunk made of named stages run in order; the outputs of ``out_features`` are returned.

    stages: ``[(name, module, stride_after_this_stage), ...]``; stage 0 is the stem.
    out_features: names of the stages whose outputs are returned, keyed ``f"s{stride}"``.
    box_head: the network's region head (see module docstring), handed over by :meth:`make_box_head`.
    """

    def __init__(
        self,
        stages: list[tuple[str, nn.Module, int]],
        out_channels: dict[str, int],
        box_head: BoxHead | None,
        out_features: list[str] | None = None,
    ):
        super().__init__()
        self.stage_names = [name for name, _, _ in stages]
        self.stages = nn.ModuleDict({name: module for name, module, _ in stages})
        strides = {name: stride for name, _, stride in stages}
        out_features = out_features or [self.stage_names[-1]]
        for name in out_features:
            if name not in strides or name not in out_channels:
                raise ValueError(f"unknown output stage '{name}'; stages: {self.stage_names}")
        self._out = {name: f"s{strides[name]}" for name in out_features}
        self._specs = {f"s{strides[n]}": FeatureSpec(out_channels[n], strides[n]) for n in out_features}
        self._box_head = box_head
        self._last = max(self.stage_names.index(n) for n in out_features)

    def output_shape(self) -> dict[str, FeatureSpec]:
        return dict(self._specs)

    def make_box_head(self) -> BoxHead:
        if self._box_head is None:
            raise RuntimeError(f"{type(self).__name__} has no region head to hand over")
        return self._box_head

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        outputs = {}
        x = images
        for name in self.stage_names[: self._last + 1]:
            x = self.stages[name](x)
            if name in self._out:
                outputs[self._out[name]] = x
        return outputs

    def freeze(self, freeze_at: int) -> Backbone:
        """Freeze the stem (``freeze_at >= 1``) and the next ``freeze_at - 1`` stages."""
        for name in self.stage_names[:freeze_at]:
            for p in self.stages[name].parameters():
                p.requires_grad_(False)
        return self


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in ``module`` by a FrozenBatchNorm2d holding its statistics."""
    if isinstance(module, nn.BatchNorm2d):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        if module.affine:
            frozen.weight.copy_(module.weight.detach())
            frozen.bias.copy_(module.bias.detach())
        if module.running_mean is not None:
            frozen.running_mean.copy_(module.running_mean)
            frozen.running_var.copy_(module.running_var)
        return frozen
    for name, child in module.named_children():
        new = freeze_batchnorm(child)
        if new is not child:
            setattr(module, name, new)
    return module
