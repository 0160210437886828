"""Feature Pyramid Network (Lin et al., 2017): a top-down path with lateral connections over C2-C5.

Shape shorthand:
    N: images; H, W: padded batch size; C_l: channels of the trunk's level l; D: pyramid channels (256).

``P5 = out5(lat5(C5))``; for l = 4, 3, 2: ``M_l = lat_l(C_l) + nearest_upsample(M_{l+1})`` to C_l's size,
``P_l = out_l(M_l)``; the laterals are 1x1 convolutions, the outputs 3x3 (no batch norm, no activation);
``P6 = max_pool(P5, kernel 1, stride 2)`` for the RPN (torchvision's ``LastLevelMaxPool``). The module is
a trunk like :class:`backbones.base.Backbone`: ``forward(images (N, 3, H, W)) -> {"s4": (N, D, H/4, W/4),
..., "s64": (N, D, ceil(H/64), ceil(W/64))}`` with ``output_shape()`` naming the levels by stride.

The parameter names (``inner_blocks.i``, ``layer_blocks.i``, i = 0 for the finest level) and the
initialisation (kaiming uniform, a = 1; biases 0) are torchvision's ``FeaturePyramidNetwork``'s.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from backbones.base import Backbone, FeatureSpec


class FPN(nn.Module):
    """The pyramid over ``bottom_up``'s outputs (at least two levels, strides doubling), ``out_channels``
    per level; ``top_pool`` adds the max-pooled level above the coarsest. ``body`` is the trunk.
    ``min_stride`` leaves out the trunk's finer outputs (8: P3-P5 from C3-C5, no P2)."""

    def __init__(
        self, bottom_up: Backbone, out_channels: int = 256, *, top_pool: bool = True, min_stride: int = 1
    ):
        super().__init__()
        shapes = {n: s for n, s in bottom_up.output_shape().items() if s.stride >= min_stride}
        self.in_features = sorted(shapes, key=lambda name: shapes[name].stride)  # finest first
        strides = [shapes[name].stride for name in self.in_features]
        if len(strides) < 2 or any(b != 2 * a for a, b in zip(strides, strides[1:])):
            raise ValueError(f"an FPN needs two or more trunk levels with doubling strides, got {shapes}")
        self.body = bottom_up
        self.out_channels = out_channels
        self.top_pool = top_pool
        self.inner_blocks = nn.ModuleList(
            nn.Conv2d(shapes[name].channels, out_channels, 1) for name in self.in_features
        )
        self.layer_blocks = nn.ModuleList(
            nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in self.in_features
        )
        for conv in [*self.inner_blocks, *self.layer_blocks]:
            nn.init.kaiming_uniform_(conv.weight, a=1)
            nn.init.zeros_(conv.bias)
        self._specs = {f"s{s}": FeatureSpec(out_channels, s) for s in strides}
        if top_pool:
            self._specs[f"s{2 * strides[-1]}"] = FeatureSpec(out_channels, 2 * strides[-1])

    def output_shape(self) -> dict[str, FeatureSpec]:
        return dict(self._specs)

    @property
    def trunk_stride(self) -> int:
        """Stride of the trunk's coarsest level: a batch padded to a multiple of it aligns every level."""
        return self.body.output_shape()[self.in_features[-1]].stride

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        bottom_up = self.body(images)
        xs = [bottom_up[name] for name in self.in_features]
        last = self.inner_blocks[-1](xs[-1])
        results = [self.layer_blocks[-1](last)]
        for i in range(len(xs) - 2, -1, -1):
            lateral = self.inner_blocks[i](xs[i])
            last = lateral + F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            results.insert(0, self.layer_blocks[i](last))
        if self.top_pool:
            results.append(F.max_pool2d(results[-1], kernel_size=1, stride=2))
        return dict(zip(self._specs, results))
