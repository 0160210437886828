"""SE-ResNet: Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018.

Every residual block of a :mod:`backbones.resnet` ResNet gets a squeeze-and-excitation module on its
residual branch, after the last BN and before the addition with the shortcut (Fig. 3 of the paper):

    u (N, C, H, W) -> global average pool (N, C, 1, 1) -> fc C -> C/r, ReLU -> fc C/r -> C, sigmoid
      -> s (N, C, 1, 1);  output u * s

with reduction ratio ``r = 16`` (Sec. 6.1). The two fully-connected layers are 1x1 convolutions named
``se.fc1`` / ``se.fc2`` and the hidden width is ``C / r`` rounded to a multiple of 8 (at least 8) as in
timm's ``seresnet*`` models, so that timm checkpoints load strictly and compute the same logits. This
rounding only changes the 64- and 128-channel blocks of SE-ResNet-18/34 (8 instead of 4 and 8 hidden
units); ``se_divisor=1`` gives the paper's exact ``C / r``.

Options: those of :mod:`backbones.resnet` (``width``, ``zero_init_residual``, ``stride_in_1x1``) plus
``se_reduction`` (16) and ``se_divisor`` (8). The SE modules add about 10% parameters and 0.3%
multiply-adds to ResNet-50 (28.1M vs 25.6M; 3.87 vs 3.86 G with the paper's stride placement).

For detection the network is cut like a ResNet (:func:`backbones.resnet.cut_for_detection`, "C4"; or
:func:`backbones.resnet.cut_for_fpn`, C2-C5 for a Feature Pyramid Network).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import Tensor, nn

from .base import Backbone
from .resnet import _DEPTHS, Block, ResNet
from .resnet import cut_for_detection as _cut_resnet
from .resnet import cut_for_fpn as _cut_resnet_fpn


def se_hidden_channels(channels: int, reduction: int = 16, divisor: int = 8) -> int:
    """``channels / reduction`` rounded to the nearest multiple of ``divisor``, at least ``divisor``."""
    return max(divisor, int(channels / reduction + divisor / 2) // divisor * divisor)


class SEModule(nn.Module):
    """Squeeze-and-excitation: ``(N, C, H, W) -> (N, C, H, W)``, channels rescaled by gates in (0, 1)."""

    def __init__(self, channels: int, reduction: int = 16, divisor: int = 8):
        super().__init__()
        hidden = se_hidden_channels(channels, reduction, divisor)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        s = x.mean((2, 3), keepdim=True)  # squeeze: (N, C, 1, 1)
        s = self.gate(self.fc2(self.act(self.fc1(s))))  # excitation
        return x * s


class SEResNet(ResNet):
    """A :class:`~backbones.resnet.ResNet` whose blocks hold an :class:`SEModule` named ``se``."""

    def __init__(
        self,
        block: Block,
        layers: list[int],
        num_classes: int = 1000,
        *,
        se_reduction: int = 16,
        se_divisor: int = 8,
        **options,
    ):
        attention = partial(SEModule, reduction=se_reduction, divisor=se_divisor)
        super().__init__(block, layers, num_classes, attention=attention, **options)


def cut_for_detection(model: nn.Module) -> Backbone:
    """The ResNet "C4" cut (trunk to layer3, stride 16; box head layer4 + pooling at 14x14 RoIs)."""
    if not isinstance(model, SEResNet):
        raise TypeError(f"expected an SEResNet, got {type(model).__name__}")
    return _cut_resnet(model)


def cut_for_fpn(model: nn.Module) -> Backbone:
    """The ResNet cut for a Feature Pyramid Network (C2-C5 at strides 4-32, no region head)."""
    if not isinstance(model, SEResNet):
        raise TypeError(f"expected an SEResNet, got {type(model).__name__}")
    return _cut_resnet_fpn(model)


def _build(block: Block, layers: list[int], num_classes: int = 1000, **options) -> SEResNet:
    return SEResNet(block, layers, num_classes, **options)


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    f"se_{name}": partial(_build, block, layers) for name, (block, layers) in _DEPTHS.items()
}
