"""VGG: Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015 (configurations A, B, D, E of Table 1 = VGG-11, -13, -16, -19), optionally with batch norm after
every convolution (Ioffe & Szegedy 2015; not in the paper, torchvision's ``vgg*_bn``).

Layout and parameter names follow torchvision exactly (``features.N``, ``avgpool``, ``classifier.0/3/6``)
so that a torchvision ImageNet state_dict loads strictly:

    features    3x3 convolutions (stride 1, padding 1) + ReLU, 2x2/2 max pooling after each block
                (N, 3, 224, 224) -> (N, 512, 7, 7)
    avgpool     AdaptiveAvgPool2d(7): the identity at 224x224; lets smaller or larger images through
    classifier  fc6 4096 - ReLU - dropout - fc7 4096 - ReLU - dropout - fc8 num_classes

For detection (Fast R-CNN, Girshick 2015, Sec. 4): the trunk is conv1_1..conv5_3 + ReLU (pool5 dropped,
stride 16, 512 channels); the region head is fc6-fc7 on 7x7 RoIs (out 4096), the classifier's own modules.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .base import Backbone, BoxHead

# Table 1 of the paper: numbers are 3x3 convolutions with that many channels, "M" a 2x2/2 max pool.
CONFIGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


def make_features(config: list[int | str], batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
    """The convolutional part, as one flat ``nn.Sequential`` (torchvision's indices)."""
    layers: list[nn.Module] = []
    for v in config:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        assert isinstance(v, int)
        layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(v))
        layers.append(nn.ReLU(inplace=True))
        in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """``(N, 3, H, W) -> (N, num_classes)``; H, W >= 32 (five 2x2 poolings)."""

    def __init__(
        self,
        config: list[int | str],
        num_classes: int = 1000,
        *,
        batch_norm: bool = False,
        dropout: float = 0.5,
        init_weights: bool = True,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.features = make_features(config, batch_norm)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),  # fc7
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),  # fc8
        )
        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        # He et al. 2015 for the convolutions (the paper pre-trained A and copied it into the deeper nets;
        # Sec. 3.1 notes that Glorot-style random initialisation works as well), N(0, 0.01) for the fc layers.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _builder(config: str, batch_norm: bool) -> Callable[..., VGG]:
    def build(num_classes: int = 1000, *, dropout: float = 0.5, init_weights: bool = True) -> VGG:
        return VGG(
            CONFIGS[config], num_classes, batch_norm=batch_norm, dropout=dropout, init_weights=init_weights
        )

    depth = {"A": 11, "B": 13, "D": 16, "E": 19}[config]
    build.__name__ = f"vgg{depth}{'_bn' if batch_norm else ''}"
    build.__doc__ = f"VGG-{depth} (configuration {config}){' with batch norm' if batch_norm else ''}."
    return build


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {
    f"vgg{depth}{suffix}": _builder(config, bn)
    for config, depth in (("A", 11), ("B", 13), ("D", 16), ("E", 19))
    for suffix, bn in (("", False), ("_bn", True))
}


def cut_for_detection(model: nn.Module) -> Backbone:
    """Trunk = the conv blocks without pool5, one stage per block:

    ``stem`` (conv1_x + pool1, stride 2), ``conv2`` (+ pool2, 4), ``conv3`` (+ pool3, 8), ``conv4``
    (+ pool4, 16), ``conv5`` (conv5_x + ReLU, 16) -> ``{"s16": (N, 512, ~H/16, ~W/16)}``.
    ``freeze_at=2`` freezes conv1_x and conv2_x, as Fast R-CNN did for VGG-16.
    Head = fc6-fc7 with their ReLU and dropout, on 7x7 RoIs: ``(R, 512, 7, 7) -> (R, 4096)``.
    The modules are the classifier's own, so loaded weights carry over.
    """
    if not isinstance(model, VGG):
        raise TypeError(f"expected a VGG, got {type(model).__name__}")
    blocks: list[list[nn.Module]] = [[]]
    for layer in model.features:
        blocks[-1].append(layer)
        if isinstance(layer, nn.MaxPool2d):
            blocks.append([])
    last = blocks.pop()
    if last:  # features not ending with a pool (not a Table 1 configuration)
        blocks.append(last)
    elif isinstance(blocks[-1][-1], nn.MaxPool2d):
        blocks[-1] = blocks[-1][:-1]  # drop pool5
    names = ["stem"] + [f"conv{i}" for i in range(2, len(blocks) + 1)]
    stages = []
    stride = 1
    for name, block in zip(names, blocks):
        stride *= 2 if isinstance(block[-1], nn.MaxPool2d) else 1
        stages.append((name, nn.Sequential(*block), stride))
    channels = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)][-1]
    fc = model.classifier
    head = BoxHead(nn.Sequential(nn.Flatten(1), *list(fc)[:6]), out_channels=fc[3].out_features, resolution=7)
    return Backbone(stages, {names[-1]: channels}, head)
