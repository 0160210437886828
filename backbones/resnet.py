"""ResNet for ImageNet: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.

Table 1 of the paper, for a 224x224 input (``w`` = ``width``, 64 in the paper):

==========  ==========  ========================================  ==================================
stage       output      ResNet-18/34 (basic block: 3x3, 3x3)      ResNet-50/101/152 (bottleneck:
                                                                  1x1 w, 3x3 w, 1x1 4w)
==========  ==========  ========================================  ==================================
conv1       112x112     7x7, w, stride 2 (+ BN, ReLU)
maxpool     56x56       3x3, stride 2
layer1      56x56       [2, 3] blocks of w channels                [3, 3, 3] blocks, w -> 4w
layer2      28x28       [2, 4] blocks of 2w, first stride 2       [4, 4, 8], 2w -> 8w
layer3      14x14       [2, 6] blocks of 4w                       [6, 23, 36], 4w -> 16w
layer4      7x7         [2, 3] blocks of 8w                       [3, 3, 3], 8w -> 32w
avgpool+fc  1x1         global average pooling, fc num_classes
==========  ==========  ========================================  ==================================

Batch normalisation follows every convolution (Sec. 3.4); weights use He initialisation (kaiming normal,
``fan_out`` mode as in torchvision). Shortcuts are identities, with a 1x1 convolution + BN projection
("option B") where the shape changes.

The module and parameter names are torchvision's (``conv1, bn1, layer1..4, fc``, ``downsample.0/1``),
so torchvision ImageNet checkpoints load strictly. Like torchvision ("ResNet v1.5"), bottleneck blocks
stride in their 3x3 convolution; ``stride_in_1x1=True`` puts the stride in the first 1x1 convolution as
in the paper (same parameters, 3.86 instead of 4.09 G multiply-adds for ResNet-50; checkpoints of one
variant load into the other but compute a different function).

Options of every builder: ``width`` (base channels, 64; all channel counts scale with it),
``zero_init_residual`` (start the last BN of each residual branch at zero, Goyal et al. 2017; off),
``stride_in_1x1``, ``replace_stride_with_dilation`` (three booleans for layer2..layer4, as in torchvision:
a stage keeps its input's resolution and dilates its 3x3 convolutions instead of striding, Yu & Koltun
2016 / DeepLab; the weights are the same, so a classifier trained without it loads into a network with it).

For detection the network is cut in the "C4" way (He et al. 2016, Sec. "Object detection"; detectron2's
``Res5ROIHeads``): the trunk is ``conv1..layer3`` (stride 16), the region head is ``layer4`` + global
average pooling applied to 14x14 RoI features (``layer4`` strides them to 7x7). With
``replace_stride_with_dilation=[False, True, False]`` the trunk has stride 8: twice the feature resolution
for small objects, at the cost of running layer3 on 4x the positions (the region head is unchanged).

For a Feature Pyramid Network (Lin et al. 2017) the network is cut with :func:`cut_for_fpn`: the trunk is
the whole of ``conv1..layer4`` and returns C2-C5 (strides 4, 8, 16, 32); there is no region head (the FPN
detector brings its own, :class:`rcnn.modeling.box_heads.TwoMLPHead`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import Tensor, nn

from .base import Backbone, BoxHead

Attention = Callable[[int], nn.Module]  # channels -> module applied to the residual branch


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(
        in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
    )


def conv1x1(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (Fig. 2 left): ``(N, in, H, W) -> (N, channels, H/stride, W/stride)``.

    ``dilation`` applies to both 3x3 convolutions; ``first_dilation`` (default: ``dilation``) to the first.
    ``attention`` (e.g. squeeze-and-excitation) is applied to the residual branch before the addition and
    registered as ``se``.
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        stride_in_1x1: bool = False,
        attention: Attention | None = None,
        dilation: int = 1,
        first_dilation: int | None = None,
    ):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride, first_dilation or dilation)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(channels)
        if attention is not None:
            self.se = attention(channels)
        self.downsample = downsample

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if hasattr(self, "se"):
            out = self.se(out)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (Fig. 5 right): ``(N, in, H, W) -> (N, 4 * channels, H/s, W/s)``.

    The stride sits in the 3x3 convolution (torchvision, "v1.5") or, with ``stride_in_1x1``, in the first
    1x1 convolution (the paper). ``dilation`` (``first_dilation``) applies to the 3x3 convolution;
    ``attention`` as in :class:`BasicBlock`.
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        channels: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        stride_in_1x1: bool = False,
        attention: Attention | None = None,
        dilation: int = 1,
        first_dilation: int | None = None,
    ):
        super().__init__()
        s1, s3 = (stride, 1) if stride_in_1x1 else (1, stride)
        out_channels = channels * self.expansion
        self.conv1 = conv1x1(in_channels, channels, s1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, s3, first_dilation or dilation)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        if attention is not None:
            self.se = attention(out_channels)
        self.downsample = downsample

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if hasattr(self, "se"):
            out = self.se(out)
        return self.relu(out + identity)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)`` logits; the stages have strides 4 (stem, layer1), 8, 16, 32.

    block: :class:`BasicBlock` or :class:`Bottleneck`; layers: blocks per stage, e.g. ``[3, 4, 6, 3]``.
    """

    def __init__(
        self,
        block: Block,
        layers: list[int],
        num_classes: int = 1000,
        *,
        width: int = 64,
        zero_init_residual: bool = False,
        stride_in_1x1: bool = False,
        attention: Attention | None = None,
        replace_stride_with_dilation: Sequence[bool] = (False, False, False),
    ):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"ResNet has 4 stages, got layers={layers}")
        if width < 1:
            raise ValueError(f"width must be positive, got {width}")
        if len(replace_stride_with_dilation) != 3:
            raise ValueError(
                "replace_stride_with_dilation needs 3 booleans (layer2, layer3, layer4), got "
                f"{replace_stride_with_dilation!r}"
            )
        self.dilation = 1
        self.replace_stride_with_dilation = [bool(d) for d in replace_stride_with_dilation]
        self.block = block
        self.width = width
        self.num_classes = num_classes
        self._in_channels = width
        self._block_options = {"stride_in_1x1": stride_in_1x1, "attention": attention}
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(width, layers[0], stride=1)
        dilate = self.replace_stride_with_dilation
        self.layer2 = self._make_layer(2 * width, layers[1], stride=2, dilate=dilate[0])
        self.layer3 = self._make_layer(4 * width, layers[2], stride=2, dilate=dilate[1])
        self.layer4 = self._make_layer(8 * width, layers[3], stride=2, dilate=dilate[2])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        del self._block_options
        self.reset_parameters(zero_init_residual)

    def _make_layer(self, channels: int, blocks: int, stride: int, dilate: bool = False) -> nn.Sequential:
        """A stage; with ``dilate`` its stride becomes a dilation (torchvision's rule: the first block's
        3x3 convolution keeps the previous dilation, the following ones use the new one)."""
        out_channels = channels * self.block.expansion
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        downsample = None
        if stride != 1 or self._in_channels != out_channels:
            downsample = nn.Sequential(
                conv1x1(self._in_channels, out_channels, stride), nn.BatchNorm2d(out_channels)
            )
        options = self._block_options
        modules = [
            self.block(
                self._in_channels, channels, stride, downsample, **options,
                dilation=self.dilation, first_dilation=previous_dilation,
            )
        ]  # fmt: skip
        self._in_channels = out_channels
        modules += [
            self.block(out_channels, channels, **options, dilation=self.dilation) for _ in range(1, blocks)
        ]
        return nn.Sequential(*modules)

    def reset_parameters(self, zero_init_residual: bool = False) -> None:
        """He initialisation of the convolutions, BN at identity (or zero for the last BN of each block)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn.weight)

    @property
    def stage_channels(self) -> list[int]:
        """Output channels of layer1..layer4."""
        return [c * self.width * self.block.expansion for c in (1, 2, 4, 8)]

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, w, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, 8w * expansion, H/32, W/32)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def cut_for_detection(model: nn.Module) -> Backbone:
    """The "C4" cut: trunk ``stem, layer1, layer2, layer3`` -> ``{"s16": (N, 4w * expansion, H/16, W/16)}``
    (``"s8"``, H/8, with layer3 dilated: ``replace_stride_with_dilation=[False, True, False]``);
    box head ``layer4`` + global average pooling, ``(R, 4w * e, 14, 14) -> (R, 8w * e)``.

    Stages for ``freeze_at``: 0 stem (conv1, bn1, relu, maxpool), 1 layer1, 2 layer2, 3 layer3. The modules
    are shared with ``model`` (its ``fc`` is dropped).
    """
    if not isinstance(model, ResNet):
        raise TypeError(f"expected a ResNet, got {type(model).__name__}")
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    channels = model.stage_channels
    s8 = 4 if model.replace_stride_with_dilation[0] else 8
    s16 = s8 if model.replace_stride_with_dilation[1] else 2 * s8
    stages = [("stem", stem, 4), ("layer1", model.layer1, 4), ("layer2", model.layer2, s8)]
    stages.append(("layer3", model.layer3, s16))
    head = BoxHead(nn.Sequential(model.layer4, nn.AdaptiveAvgPool2d(1)), channels[3], resolution=14)
    return Backbone(stages, {"layer3": channels[2]}, head)


def cut_for_fpn(model: nn.Module) -> Backbone:
    """The cut for a Feature Pyramid Network: trunk ``stem, layer1..layer4`` -> ``{"s4": C2 (N, w * e, H/4,
    W/4), "s8": C3, "s16": C4, "s32": C5 (N, 8w * e, H/32, W/32)}``, no region head.

    Stages for ``freeze_at``: 0 stem, 1 layer1, ..., 4 layer4 (torchvision's ``trainable_backbone_layers=3``
    is ``freeze_at=2``). The modules are shared with ``model`` (its ``fc`` is dropped). A dilated network
    has two stages at one stride, which a pyramid cannot tell apart: ValueError.
    """
    if not isinstance(model, ResNet):
        raise TypeError(f"expected a ResNet, got {type(model).__name__}")
    if any(model.replace_stride_with_dilation):
        raise ValueError(
            "a Feature Pyramid Network needs the strides 4, 8, 16, 32 of C2-C5: "
            f"replace_stride_with_dilation={model.replace_stride_with_dilation} must be all false"
        )
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    names = ["layer1", "layer2", "layer3", "layer4"]
    stages = [("stem", stem, 4)] + [(n, getattr(model, n), 4 * 2**i) for i, n in enumerate(names)]
    return Backbone(stages, dict(zip(names, model.stage_channels)), None, out_features=names)


_DEPTHS: dict[str, tuple[Block, list[int]]] = {
    "resnet18": (BasicBlock, [2, 2, 2, 2]),
    "resnet34": (BasicBlock, [3, 4, 6, 3]),
    "resnet50": (Bottleneck, [3, 4, 6, 3]),
    "resnet101": (Bottleneck, [3, 4, 23, 3]),
    "resnet152": (Bottleneck, [3, 8, 36, 3]),
}


def _build(block: Block, layers: list[int], num_classes: int = 1000, **options) -> ResNet:
    return ResNet(block, layers, num_classes, **options)


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    name: partial(_build, block, layers) for name, (block, layers) in _DEPTHS.items()
}
