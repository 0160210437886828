"""CIFAR-10 ResNets and their plain counterparts: He, Zhang, Ren, Sun, "Deep Residual Learning for Image
Recognition", CVPR 2016, Sec. 4.2.

For 32x32 inputs, 6n + 2 weighted layers (``resnet20/32/44/56/110``: n = 3, 5, 7, 9, 18):

=========  ==========  ============================================
stage      output      layers (``w`` = ``width``, 16 in the paper)
=========  ==========  ============================================
conv1      32x32x w    3x3 convolution, BN, ReLU
layer1     32x32x w    n basic blocks (two 3x3 convolutions each)
layer2     16x16x 2w   n blocks, the first with stride 2
layer3     8x8x 4w     n blocks, the first with stride 2
pool, fc   num_classes global average pooling, fully connected
=========  ==========  ============================================

Shortcuts are identities. Where the shape changes (the first block of layer2 and layer3) the paper's
CIFAR networks use **option A** (Sec. 3.3 and 4.2): the input is subsampled by 2 and zero channels are
appended, so the networks have exactly as many parameters as their plain counterparts (ResNet-20:
0.27M, ..., ResNet-110: 1.7M, Table 6). ``shortcut="B"`` uses 1x1 convolution + BN projections there
instead. ``plain20/32/44/56/110`` are the same stacks without any shortcut (the degradation experiment,
Fig. 6). BN follows every convolution; convolutions use He initialisation (kaiming normal, fan_out).
Builders take ``num_classes`` like every entry of the registry (pass 10 for CIFAR-10) and the options
``shortcut`` ("A"), ``width`` (16) and ``zero_init_residual`` (False). Deviation, off by default:
``zero_init_residual=True`` starts the last BN's gamma of every residual branch at zero (Goyal et al. 2017,
"Accurate, Large Minibatch SGD", Sec. 5.1), so each block begins as its shortcut; plain networks have no
residual branch and refuse it.

For detection (a toy setting, useful for small images): the trunk is ``conv1, layer1, layer2`` (stride 2,
``2w`` channels, key ``"s2"``) and the box head ``layer3`` + global average pooling on 8x8 RoI features
(4x4 after layer3's stride), ``out_channels = 4w``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Backbone, BoxHead

SHORTCUTS = ("A", "B", "none")


class PadShortcut(nn.Module):
    """Option A: ``(N, C, H, W) -> (N, out_channels, H/stride, W/stride)`` by subsampling and zero
    channels appended (parameter-free)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"option A cannot reduce channels ({in_channels} -> {out_channels})")
        self.extra = out_channels - in_channels
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class CifarBlock(nn.Module):
    """Two 3x3 convolutions with BN; ``shortcut`` "A" / "B" (for a change of shape, identity otherwise) or
    "none" (plain network). ``(N, in, H, W) -> (N, channels, H/stride, W/stride)``."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1, shortcut: str = "A"):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module | None = None
        if shortcut != "none":
            if stride == 1 and in_channels == channels:
                self.shortcut = nn.Identity()
            elif shortcut == "A":
                self.shortcut = PadShortcut(in_channels, channels, stride)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
                )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return F.relu(out)


class CifarResNet(nn.Module):
    """``(N, 3, 32, 32) -> (N, num_classes)``; ``depth = 6n + 2``; stage strides 1, 1, 2, 4."""

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        *,
        shortcut: str = "A",
        width: int = 16,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        if (depth - 2) % 6 != 0 or depth < 8:
            raise ValueError(f"depth must be 6n + 2 (n >= 1), got {depth}")
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got '{shortcut}'")
        if zero_init_residual and shortcut == "none":
            raise ValueError("zero_init_residual needs residual branches: plain networks have none")
        n = (depth - 2) // 6
        self.depth, self.shortcut, self.width, self.num_classes = depth, shortcut, width, num_classes
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(width, width, n, 1)
        self.layer2 = self._make_layer(width, 2 * width, n, 2)
        self.layer3 = self._make_layer(2 * width, 4 * width, n, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, CifarBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, in_channels: int, channels: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [CifarBlock(in_channels, channels, stride, self.shortcut)]
        layers += [CifarBlock(channels, channels, 1, self.shortcut) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))  # (N, w, 32, 32)
        x = self.layer3(self.layer2(self.layer1(x)))  # (N, 4w, 8, 8)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def cut_for_detection(model: nn.Module) -> Backbone:
    """Trunk ``stem`` (conv1, bn1, relu), ``layer1`` (stride 1), ``layer2`` (stride 2) ->
    ``{"s2": (N, 2w, H/2, W/2)}``; box head ``layer3`` + global average pooling,
    ``(R, 2w, 8, 8) -> (R, 4w)``."""
    if not isinstance(model, CifarResNet):
        raise TypeError(f"expected a CifarResNet, got {type(model).__name__}")
    w = model.width
    stem = nn.Sequential(model.conv1, model.bn1, model.relu)
    stages = [("stem", stem, 1), ("layer1", model.layer1, 1), ("layer2", model.layer2, 2)]
    head = BoxHead(nn.Sequential(model.layer3, nn.AdaptiveAvgPool2d(1)), 4 * w, resolution=8)
    return Backbone(stages, {"layer2": 2 * w}, head)


def _build(depth: int, plain: bool, num_classes: int = 1000, **options) -> CifarResNet:
    if plain:
        if options.get("shortcut", "none") != "none":
            raise ValueError("plain networks have no shortcuts")
        options["shortcut"] = "none"
    return CifarResNet(depth, num_classes, **options)


DEPTHS = (20, 32, 44, 56, 110)

CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    **{f"resnet{d}": partial(_build, d, False) for d in DEPTHS},
    **{f"plain{d}": partial(_build, d, True) for d in DEPTHS},
}
