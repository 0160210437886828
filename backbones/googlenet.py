"""GoogLeNet (Inception v1): Szegedy et al., "Going Deeper with Convolutions", CVPR 2015.

Table 1 of the paper (224x224 input; inception columns: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5,
pool proj):

=============  ===========  ========================  =============================================
layer          output       inception columns          notes
=============  ===========  ========================  =============================================
conv1          112x112x64                              7x7/2
maxpool1       56x56x64                                3x3/2, then LRN
conv2, conv3   56x56x192                               1x1 reduce 64, 3x3 192, then LRN
maxpool2       28x28x192                               3x3/2
inception3a    28x28x256    64  96 128 16  32  32
inception3b    28x28x480    128 128 192 32  96  64
maxpool3       14x14x480                               3x3/2
inception4a    14x14x512    192 96 208 16  48  64      auxiliary classifier 1 on its output
inception4b    14x14x512    160 112 224 24  64  64
inception4c    14x14x512    128 128 256 24  64  64
inception4d    14x14x528    112 144 288 32  64  64     auxiliary classifier 2 on its output
inception4e    14x14x832    256 160 320 32 128 128
maxpool4       7x7x832                                 3x3/2
inception5a    7x7x832      256 160 320 32 128 128
inception5b    7x7x1024     384 192 384 48 128 128
avgpool, fc    1x1x1000                                global average pooling, dropout 40%, linear
=============  ===========  ========================  =============================================

Every convolution is followed by a ReLU; pooling rounds up (Caffe). LRN: size 5, alpha 1e-4, beta 0.75.
Auxiliary classifiers (Sec. 5): 5x5/3 average pooling (-> 4x4), 1x1 conv 128 + ReLU, fc 1024 + ReLU,
70% dropout, linear. ``googlenet`` returns ``(logits, aux1, aux2)`` in training mode and the logits in
eval mode. The paper does not give its initialisation; the BVLC Caffe reference model's is used (Caffe
"xavier", i.e. U(+-sqrt(3 / fan_in)), biases 0.2 before ReLUs, 0 for the classifiers).

``googlenet_bn`` is torchvision's GoogLeNet, with its exact module names so that its checkpoints load
strictly: batch norm (eps 1e-3) after every bias-free convolution and no LRN, the "5x5" branch built with
a 3x3 kernel (torchvision issue #906), a 2x2/2 maxpool4, 4x4 adaptive pooling in the auxiliary heads,
20% dropout, truncated-normal initialisation (std 0.01). ``transform_input`` (off, as torchvision's
default without weights) re-normalises ImageNet-normalised inputs to the ``(x - 0.5) / 0.5`` scale;
torchvision's ImageNet checkpoint expects it on. It also returns ``(logits, aux1, aux2)`` in training
mode (torchvision's tuple order is ``logits, aux2, aux1``).

For detection the trunk runs up to inception 4e (stride 16, 832 channels) and the box head is
maxpool4 + inception 5a/5b + global average pooling, on 14x14 RoI features (7x7 after maxpool4).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .base import Backbone, BoxHead

# (in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), Table 1
INCEPTION_CONFIG: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "inception3a": (192, 64, 96, 128, 16, 32, 32),
    "inception3b": (256, 128, 128, 192, 32, 96, 64),
    "inception4a": (480, 192, 96, 208, 16, 48, 64),
    "inception4b": (512, 160, 112, 224, 24, 64, 64),
    "inception4c": (512, 128, 128, 256, 24, 64, 64),
    "inception4d": (512, 112, 144, 288, 32, 64, 64),
    "inception4e": (528, 256, 160, 320, 32, 128, 128),
    "inception5a": (832, 256, 160, 320, 32, 128, 128),
    "inception5b": (832, 384, 192, 384, 48, 128, 128),
}


class ConvReLU(nn.Module):
    """The paper's unit: convolution with bias, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv: Any):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, **conv)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x), inplace=True)


class BasicConv2d(nn.Module):
    """torchvision's unit: bias-free convolution, batch norm (eps 1e-3), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, **conv: Any):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


ConvBlock = Callable[..., nn.Module]


class Inception(nn.Module):
    """Fig. 2(b): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 maxpool -> 1x1, concatenated:
    ``(N, in, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``."""

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        conv_block: ConvBlock = ConvReLU,
        kernel_5x5: int = 5,
    ):
        super().__init__()
        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            conv_block(in_channels, ch3x3red, kernel_size=1),
            conv_block(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            conv_block(in_channels, ch5x5red, kernel_size=1),
            conv_block(ch5x5red, ch5x5, kernel_size=kernel_5x5, padding=kernel_5x5 // 2),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
            conv_block(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on a 14x14 map: ``(N, C, 14, 14) -> (N, num_classes)``."""

    def __init__(
        self, in_channels: int, num_classes: int, conv_block: ConvBlock, pool: nn.Module, dropout: float
    ):
        super().__init__()
        self.pool = pool  # -> (N, C, 4, 4)
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.dropout(F.relu(self.fc1(x), inplace=True)))


class GoogLeNet(nn.Module):
    """``(N, 3, 224, 224) -> (N, num_classes)``; in training mode with ``aux_logits``:
    ``(logits, aux1, aux2)``. ``batch_norm`` selects torchvision's variant (see the module docstring)."""

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        batch_norm: bool = False,
        aux_logits: bool = True,
        dropout: float = 0.4,
        dropout_aux: float = 0.7,
        transform_input: bool = False,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.batch_norm = batch_norm
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        conv: ConvBlock = BasicConv2d if batch_norm else ConvReLU

        def lrn() -> nn.Module:
            return nn.Identity() if batch_norm else nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

        self.conv1 = conv(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.norm1 = lrn()
        self.conv2 = conv(64, 64, kernel_size=1)
        self.conv3 = conv(64, 192, kernel_size=3, padding=1)
        self.norm2 = lrn()
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        block = partial(Inception, conv_block=conv, kernel_5x5=3 if batch_norm else 5)
        for name in ("inception3a", "inception3b"):
            setattr(self, name, block(*INCEPTION_CONFIG[name]))
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for name in ("inception4a", "inception4b", "inception4c", "inception4d", "inception4e"):
            setattr(self, name, block(*INCEPTION_CONFIG[name]))
        self.maxpool4 = nn.MaxPool2d(2 if batch_norm else 3, stride=2, ceil_mode=True)
        for name in ("inception5a", "inception5b"):
            setattr(self, name, block(*INCEPTION_CONFIG[name]))

        self.aux1: InceptionAux | None = None
        self.aux2: InceptionAux | None = None
        if aux_logits:
            for name, channels in (("aux1", 512), ("aux2", 528)):
                pool = nn.AdaptiveAvgPool2d(4) if batch_norm else nn.AvgPool2d(5, stride=3, ceil_mode=True)
                setattr(self, name, InceptionAux(channels, num_classes, conv, pool, dropout_aux))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1024, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if self.batch_norm:  # torchvision's init_weights=True (biases: PyTorch's defaults)
                    nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                else:  # Caffe's "xavier" filler, bias 0.2 before a ReLU
                    nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
                    nn.init.constant_(m.bias, 0.2)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if not self.batch_norm:  # the classifiers: bias 0
            for fc in [self.fc] + [aux.fc2 for aux in (self.aux1, self.aux2) if aux is not None]:
                nn.init.zeros_(fc.bias)

    def _transform_input(self, x: Tensor) -> Tensor:
        if not self.transform_input:
            return x
        mean = x.new_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = x.new_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return x * (std / 0.5) + (mean - 0.5) / 0.5

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        x = self._transform_input(x)
        x = self.maxpool2(self.norm2(self.conv3(self.conv2(self.norm1(self.maxpool1(self.conv1(x)))))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))  # (N, 480, H/16, W/16)
        x = self.inception4a(x)
        train_aux = self.training and self.aux1 is not None and self.aux2 is not None
        aux1 = self.aux1(x) if train_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if train_aux else None
        x = self.maxpool4(self.inception4e(x))  # (N, 832, H/32, W/32)
        x = self.inception5b(self.inception5a(x))  # (N, 1024, H/32, W/32)
        logits = self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
        if train_aux:
            return logits, aux1, aux2
        return logits


class _Stem(nn.Module):
    """conv1 .. maxpool2 of a :class:`GoogLeNet` (with its input transform): stride 8, 192 channels."""

    def __init__(self, model: GoogLeNet):
        super().__init__()
        self.transform_input = model.transform_input
        self.layers = nn.Sequential(
            model.conv1, model.maxpool1, model.norm1, model.conv2, model.conv3, model.norm2, model.maxpool2
        )

    _transform_input = GoogLeNet._transform_input

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(self._transform_input(x))


def cut_for_detection(model: nn.Module) -> Backbone:
    """Trunk ``stem`` (conv1..maxpool2, stride 8), ``inception3`` (3a, 3b, stride 8), ``inception4``
    (maxpool3, 4a..4e, stride 16) -> ``{"s16": (N, 832, H/16, W/16)}``; box head maxpool4 + inception
    5a/5b + global average pooling, ``(R, 832, 14, 14) -> (R, 1024)``. Auxiliary classifiers are dropped."""
    if not isinstance(model, GoogLeNet):
        raise TypeError(f"expected a GoogLeNet, got {type(model).__name__}")
    m = model
    stages = [
        ("stem", _Stem(m), 8),
        ("inception3", nn.Sequential(m.inception3a, m.inception3b), 8),
        ("inception4", nn.Sequential(m.maxpool3, m.inception4a, m.inception4b, m.inception4c, m.inception4d,
                                     m.inception4e), 16),
    ]  # fmt: skip
    head = nn.Sequential(m.maxpool4, m.inception5a, m.inception5b, nn.AdaptiveAvgPool2d(1))
    return Backbone(stages, {"inception4": 832}, BoxHead(head, 1024, resolution=14))


def googlenet(num_classes: int = 1000, **options: Any) -> GoogLeNet:
    """The paper's GoogLeNet (LRN, no batch norm). Options: ``aux_logits``, ``dropout`` (0.4),
    ``dropout_aux`` (0.7)."""
    return GoogLeNet(num_classes, batch_norm=False, **options)


def googlenet_bn(num_classes: int = 1000, **options: Any) -> GoogLeNet:
    """torchvision's GoogLeNet (batch norm). Options: ``aux_logits``, ``dropout`` (0.2), ``dropout_aux``
    (0.7), ``transform_input`` (False)."""
    options.setdefault("dropout", 0.2)
    return GoogLeNet(num_classes, batch_norm=True, **options)


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {"googlenet": googlenet, "googlenet_bn": googlenet_bn}
