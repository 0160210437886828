"""Region heads built from sizes: the two fully connected layers of the FPN detector (Lin et al., 2017).

Shape shorthand:
    R: RoIs; C: pooled channels; S: pooled size; D: hidden width (1024).

:class:`TwoMLPHead` is ``(R, C, S, S) -> flatten -> fc6 (D), ReLU -> fc7 (D), ReLU -> (R, D)``, with
torchvision's names (``fc6``, ``fc7``) and PyTorch's default ``nn.Linear`` initialisation, as torchvision's
``TwoMLPHead``. It offers the :class:`backbones.base.BoxHead` interface (``out_channels``, ``resolution``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TwoMLPHead(nn.Module):
    """``forward(pooled (R, in_channels, resolution, resolution)) -> (R, representation_size)``."""

    def __init__(self, in_channels: int, resolution: int = 7, representation_size: int = 1024):
        super().__init__()
        self.fc6 = nn.Linear(in_channels * resolution * resolution, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)
        self.out_channels = representation_size
        self.resolution = resolution

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.fc6(x.flatten(1)))  # (R, D)
        return torch.relu(self.fc7(x))
