"""LeNet-5: LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document Recognition",
Proc. IEEE 1998 (Sec. II.B, Fig. 2). Shapes for a 32x32 input:

    C1  6 5x5 convolutions        -> 6x28x28    activation
    S2  2x2/2 subsampling         -> 6x14x14
    C3  16 5x5 convolutions       -> 16x10x10   activation
    S4  2x2/2 subsampling         -> 16x5x5
    C5  120 units on the 5x5 maps -> 120        activation (a 5x5 convolution = a fully connected layer)
    F6  84 units                  -> 84         activation
    output num_classes

61,706 parameters for 10 classes and one input channel (the paper: 60,000 trainable parameters). The
input defaults to 3 channels like every network here (RGB images); ``in_channels=1`` is the paper's.
Simplifications, each a single line to change: C3 sees all six S2 maps (the paper's Table I connects
each C3 map to a subset, 1,516 instead of 2,416 parameters); S2/S4 are plain average pooling (the paper
scales the sum by a trainable coefficient and adds a trainable bias); the output layer is linear (the
paper uses Euclidean RBF units). ``activation="tanh"`` is the paper's scaled ``1.7159 tanh(2x/3)``
(Appendix A); ``"relu"`` the modern choice; ``pool="max"`` swaps the subsampling for max pooling.

For detection (a toy backbone for small images): trunk C1..S4 (stride 4, 16 channels), head C5-F6 on
5x5 RoIs (out 84).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .base import Backbone, BoxHead


class ScaledTanh(nn.Module):
    """``1.7159 * tanh(2/3 * x)`` (LeCun et al. 1998, Appendix A): f(1) = 1, f(-1) = -1."""

    def forward(self, x: Tensor) -> Tensor:
        return 1.7159 * torch.tanh(x * (2.0 / 3.0))


def _activation(name: str) -> nn.Module:
    if name == "tanh":
        return ScaledTanh()
    if name == "relu":
        return nn.ReLU(inplace=True)
    raise ValueError(f"activation must be 'tanh' or 'relu', got {name!r}")


def _pool(name: str) -> nn.Module:
    if name == "avg":
        return nn.AvgPool2d(kernel_size=2, stride=2)
    if name == "max":
        return nn.MaxPool2d(kernel_size=2, stride=2)
    raise ValueError(f"pool must be 'avg' or 'max', got {name!r}")


class LeNet5(nn.Module):
    """``(N, in_channels, 32, 32) -> (N, num_classes)`` (exactly 32x32: C5 sees the whole 5x5 map)."""

    def __init__(
        self, num_classes: int = 10, *, in_channels: int = 1, activation: str = "tanh", pool: str = "avg"
    ):
        super().__init__()
        self.num_classes = num_classes
        self.features = nn.Sequential(
            OrderedDict(
                c1=nn.Conv2d(in_channels, 6, kernel_size=5),
                act1=_activation(activation),
                s2=_pool(pool),
                c3=nn.Conv2d(6, 16, kernel_size=5),
                act3=_activation(activation),
                s4=_pool(pool),
            )
        )
        self.classifier = nn.Sequential(
            OrderedDict(
                c5=nn.Linear(16 * 5 * 5, 120),
                act5=_activation(activation),
                f6=nn.Linear(120, 84),
                act6=_activation(activation),
                output=nn.Linear(84, num_classes),
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def lenet5(
    num_classes: int = 1000, *, in_channels: int = 3, activation: str = "tanh", pool: str = "avg"
) -> LeNet5:
    """LeNet-5 (``in_channels=1``: the paper's grey-level input; ``activation="relu"``, ``pool="max"``: the
    modern variant)."""
    return LeNet5(num_classes, in_channels=in_channels, activation=activation, pool=pool)


CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {"lenet5": lenet5}


def cut_for_detection(model: nn.Module) -> Backbone:
    """Trunk stages ``stem`` (C1 + S2, stride 2) and ``c3`` (C3 + S4, stride 4) -> ``{"s4": (N, 16, ...)}``;
    head C5-F6 with their activations, ``(R, 16, 5, 5) -> (R, 84)``; the classifier's own modules."""
    if not isinstance(model, LeNet5):
        raise TypeError(f"expected a LeNet5, got {type(model).__name__}")
    f, c = model.features, model.classifier
    stages = [("stem", nn.Sequential(f.c1, f.act1, f.s2), 2), ("c3", nn.Sequential(f.c3, f.act3, f.s4), 4)]
    head = BoxHead(nn.Sequential(nn.Flatten(1), c.c5, c.act5, c.f6, c.act6), out_channels=84, resolution=5)
    return Backbone(stages, {"c3": f.c3.out_channels}, head)
