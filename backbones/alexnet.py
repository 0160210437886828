"""AlexNet, two ways.

``alexnet``: Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012 (Sec. 3, Fig. 2). Shapes for a 227x227 input (the paper's "224" does not divide out):

    conv1  96 11x11/4          -> 96x55x55   ReLU, LRN, max pool 3/2 -> 96x27x27
    conv2  256 5x5 pad 2, g=2  -> 256x27x27  ReLU, LRN, max pool 3/2 -> 256x13x13
    conv3  384 3x3 pad 1       -> 384x13x13  ReLU   (the only conv that crosses the two GPUs)
    conv4  384 3x3 pad 1, g=2  -> 384x13x13  ReLU
    conv5  256 3x3 pad 1, g=2  -> 256x13x13  ReLU, max pool 3/2 -> 256x6x6
    fc6 4096, fc7 4096 (each + ReLU + dropout 0.5, Sec. 4.2), fc8 num_classes

The two-GPU split is ``groups=2`` in conv2/4/5 (``groups=1`` merges the halves). Local response
normalisation: size 5, alpha 1e-4, beta 0.75, k 2 (Sec. 3.3). Overlapping pooling: 3x3 windows, stride 2
(Sec. 3.4). Parameters: 60,965,224 (conv 2,334,080 of which conv1 34,944; fc 58,631,144); with
``groups=1``: 62,378,344 (conv 3,747,200). An ``AdaptiveAvgPool2d(6)`` before fc6 (the identity at 227x227)
lets other input sizes through.

``alexnet_tv``: torchvision's ``alexnet``, the single-GPU variant of Krizhevsky, "One weird trick for
parallelizing convolutional neural networks", arXiv:1404.5997 (2014): 64-192-384-256-256 channels,
no LRN, no groups; same parameter names (``features.0``, ``classifier.1``, ...) so its ImageNet
state_dict loads strictly.

For detection (R-CNN, Girshick et al. 2014): trunk conv1..conv5 + ReLU (pool5 dropped, stride 16,
256 channels), region head fc6-fc7 on 6x6 RoIs (out 4096).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .base import Backbone, BoxHead


class AlexNet(nn.Module):
    """The 2012 network: ``(N, 3, 227, 227) -> (N, num_classes)``; inputs from 67x67 up."""

    def __init__(self, num_classes: int = 1000, *, dropout: float = 0.5, groups: int = 2, lrn: bool = True):
        super().__init__()
        self.num_classes = num_classes

        def norm() -> nn.Module:
            return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0) if lrn else nn.Identity()

        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 96, kernel_size=11, stride=4),
                relu1=nn.ReLU(inplace=True),
                norm1=norm(),
                pool1=nn.MaxPool2d(kernel_size=3, stride=2),
                conv2=nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=groups),
                relu2=nn.ReLU(inplace=True),
                norm2=norm(),
                pool2=nn.MaxPool2d(kernel_size=3, stride=2),
                conv3=nn.Conv2d(256, 384, kernel_size=3, padding=1),
                relu3=nn.ReLU(inplace=True),
                conv4=nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=groups),
                relu4=nn.ReLU(inplace=True),
                conv5=nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=groups),
                relu5=nn.ReLU(inplace=True),
                pool5=nn.MaxPool2d(kernel_size=3, stride=2),
            )
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(256 * 6 * 6, 4096),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(p=dropout),
                fc7=nn.Linear(4096, 4096),
                relu7=nn.ReLU(inplace=True),
                drop7=nn.Dropout(p=dropout),
                fc8=nn.Linear(4096, num_classes),
            )
        )
        self._init_weights()

    def _init_weights(self) -> None:
        # Sec. 5: weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden fc layers (so that the
        # ReLUs start in their positive regime), 0 elsewhere.
        for name, m in self.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.01)
                ones = name.split(".")[-1] in {"conv2", "conv4", "conv5", "fc6", "fc7"}
                nn.init.constant_(m.bias, 1.0 if ones else 0.0)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class AlexNetTV(nn.Module):
    """torchvision's layout (one-weird-trick AlexNet): ``(N, 3, 224, 224) -> (N, num_classes)``; from 63."""

    def __init__(self, num_classes: int = 1000, *, dropout: float = 0.5):
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),  # 0
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),  # 3
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),  # 6
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),  # 8
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),  # 10
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),  # 1: fc6
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),  # 4: fc7
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),  # 6: fc8
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def alexnet(num_classes: int = 1000, *, dropout: float = 0.5, groups: int = 2, lrn: bool = True) -> AlexNet:
    """Krizhevsky et al. 2012 (``groups=1``: the halves merged; ``lrn=False``: without LRN)."""
    return AlexNet(num_classes, dropout=dropout, groups=groups, lrn=lrn)


def alexnet_tv(num_classes: int = 1000, *, dropout: float = 0.5) -> AlexNetTV:
    """torchvision's AlexNet (loads its ImageNet state_dict strictly)."""
    return AlexNetTV(num_classes, dropout=dropout)


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {"alexnet": alexnet, "alexnet_tv": alexnet_tv}


def cut_for_detection(model: nn.Module) -> Backbone:
    """Trunk stages ``stem`` (conv1 block + pool1, stride 8), ``conv2`` (+ pool2, 16), ``conv3``, ``conv4``,
    ``conv5`` (+ ReLU, no pool5; 16) -> ``{"s16": (N, 256, ~H/16, ~W/16)}``.
    Head: fc6-fc7 with their dropout and ReLU, ``(R, 256, 6, 6) -> (R, 4096)``; the classifier's own modules.
    """
    if not isinstance(model, (AlexNet, AlexNetTV)):
        raise TypeError(f"expected an AlexNet, got {type(model).__name__}")
    layers = list(model.features)
    pools = [i for i, m in enumerate(layers) if isinstance(m, nn.MaxPool2d)]
    convs = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    bounds = [0, pools[0] + 1, pools[1] + 1, convs[3], convs[4], pools[2]]  # pool5 (last) dropped
    names = ["stem", "conv2", "conv3", "conv4", "conv5"]
    strides = [8, 16, 16, 16, 16]
    stages = [
        (name, nn.Sequential(*layers[lo:hi]), stride)
        for name, lo, hi, stride in zip(names, bounds[:-1], bounds[1:], strides)
    ]
    fc = list(model.classifier)
    head_layers = fc[: len(fc) - 1]  # everything but fc8
    fc7 = [m for m in head_layers if isinstance(m, nn.Linear)][-1]
    head = BoxHead(nn.Sequential(nn.Flatten(1), *head_layers), out_channels=fc7.out_features, resolution=6)
    return Backbone(stages, {"conv5": layers[convs[4]].out_channels}, head)
