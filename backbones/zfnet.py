"""ZFNet: Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014
(arXiv:1311.2901, 2013). Fig. 3 with the wider layers 3-5 of Table 2 ("layers 3,4,5: 512,1024,512 maps",
the best single model of the paper). Shapes for a 224x224 input:

    conv1  96 7x7/2 pad 1  -> 96x110x110  ReLU, max pool 3/2 -> 96x55x55, contrast norm
    conv2  256 5x5/2       -> 256x26x26   ReLU, max pool 3/2 -> 256x13x13, contrast norm
    conv3  512 3x3 pad 1   -> 512x13x13   ReLU
    conv4  1024 3x3 pad 1  -> 1024x13x13  ReLU
    conv5  512 3x3 pad 1   -> 512x13x13   ReLU, max pool 3/2 -> 512x6x6
    fc6 4096, fc7 4096 (each + ReLU + dropout 0.5), fc8 num_classes

Fig. 3 itself has 384, 384, 256 maps in layers 3-5: ``conv345=(384, 384, 256)``. Differences from
AlexNet: 7x7/2 first filters instead of 11x11/4, a stride-2 conv2, dense connections (no groups), pooling
before normalisation. The pools round up (Caffe's convention; this is how 110 -> 55 -> 26 -> 13 of Fig. 3
come out). "Contrast normalisation across feature maps" is taken as AlexNet's local response
normalisation (size 5, alpha 1e-4, beta 0.75, k 2): the paper replicates Krizhevsky et al. and gives no
other constants. The renormalisation of conv filters whose RMS exceeds 0.1 is a training rule, not a
layer, and is left to the trainer. An ``AdaptiveAvgPool2d(6)`` (the identity at 224x224) admits other sizes.

For detection: trunk conv1..conv5 + ReLU (pool5 dropped, stride 16), head fc6-fc7 on 6x6 RoIs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from .base import Backbone, BoxHead


class ZFNet(nn.Module):
    """``(N, 3, 224, 224) -> (N, num_classes)``."""

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        conv345: Sequence[int] = (512, 1024, 512),
        dropout: float = 0.5,
        lrn: bool = True,
    ):
        super().__init__()
        self.num_classes = num_classes
        c3, c4, c5 = conv345

        def norm() -> nn.Module:
            return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0) if lrn else nn.Identity()

        self.features = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(3, 96, kernel_size=7, stride=2, padding=1),
                relu1=nn.ReLU(inplace=True),
                pool1=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
                norm1=norm(),
                conv2=nn.Conv2d(96, 256, kernel_size=5, stride=2),
                relu2=nn.ReLU(inplace=True),
                pool2=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
                norm2=norm(),
                conv3=nn.Conv2d(256, c3, kernel_size=3, padding=1),
                relu3=nn.ReLU(inplace=True),
                conv4=nn.Conv2d(c3, c4, kernel_size=3, padding=1),
                relu4=nn.ReLU(inplace=True),
                conv5=nn.Conv2d(c4, c5, kernel_size=3, padding=1),
                relu5=nn.ReLU(inplace=True),
                pool5=nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True),
            )
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            OrderedDict(
                fc6=nn.Linear(c5 * 6 * 6, 4096),
                relu6=nn.ReLU(inplace=True),
                drop6=nn.Dropout(p=dropout),
                fc7=nn.Linear(4096, 4096),
                relu7=nn.ReLU(inplace=True),
                drop7=nn.Dropout(p=dropout),
                fc8=nn.Linear(4096, num_classes),
            )
        )
        # Sec. 3: "All weights are initialized to 10^-2 and biases are set to 0" (read as N(0, 0.01)).
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def zfnet(
    num_classes: int = 1000,
    *,
    conv345: Sequence[int] = (512, 1024, 512),
    dropout: float = 0.5,
    lrn: bool = True,
) -> ZFNet:
    """Zeiler & Fergus 2013 (``conv345=(384, 384, 256)``: Fig. 3 exactly)."""
    return ZFNet(num_classes, conv345=conv345, dropout=dropout, lrn=lrn)


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {"zfnet": zfnet}


def cut_for_detection(model: nn.Module) -> Backbone:
    """Trunk stages ``stem`` (conv1 block, stride 4), ``conv2`` (16), ``conv3``, ``conv4``, ``conv5``
    (+ ReLU, no pool5; 16) -> ``{"s16": (N, 512, ~H/16, ~W/16)}``.
    Head: fc6-fc7 with ReLU and dropout, ``(R, 512, 6, 6) -> (R, 4096)``; the classifier's own modules.
    """
    if not isinstance(model, ZFNet):
        raise TypeError(f"expected a ZFNet, got {type(model).__name__}")
    f = model.features
    stages = [
        ("stem", nn.Sequential(f.conv1, f.relu1, f.pool1, f.norm1), 4),
        ("conv2", nn.Sequential(f.conv2, f.relu2, f.pool2, f.norm2), 16),
        ("conv3", nn.Sequential(f.conv3, f.relu3), 16),
        ("conv4", nn.Sequential(f.conv4, f.relu4), 16),
        ("conv5", nn.Sequential(f.conv5, f.relu5), 16),
    ]
    c = model.classifier
    layers = nn.Sequential(nn.Flatten(1), c.fc6, c.relu6, c.drop6, c.fc7, c.relu7, c.drop7)
    head = BoxHead(layers, out_channels=c.fc7.out_features, resolution=6)
    return Backbone(stages, {"conv5": f.conv5.out_channels}, head)
