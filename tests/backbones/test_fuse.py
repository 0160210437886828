"""Folding batch norm into convolutions (backbones.fuse): same outputs, no batch norm left."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

import backbones
from backbones.fuse import fold_batchnorm, fold_conv_bn
from backbones.vgg import CONFIGS, make_features

BATCH_NORMS = (nn.BatchNorm2d, FrozenBatchNorm2d)


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> int:
    """Statistics and affine parameters away from the identity; returns the number of batch norms."""
    gen = torch.Generator().manual_seed(seed)
    count = 0
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, BATCH_NORMS):
                c = m.running_var.numel()
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                count += 1
    return count


@pytest.mark.parametrize(
    "name, options, size",
    [
        ("resnet18", {"width": 8}, 64),
        ("resnet50", {"width": 4}, 64),
        ("se_resnet18", {"width": 8}, 64),
        ("resnet20", {}, 32),
        ("googlenet_bn", {}, 96),
    ],
)
@pytest.mark.parametrize("frozen", [False, True])
def test_folded_network_computes_the_same_function(name, options, size, frozen):
    torch.manual_seed(0)
    model = backbones.build_classifier(name, num_classes=7, **options).eval()
    if frozen:
        backbones.freeze_batchnorm(model)
    count = randomise_batchnorm(model)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = model(x)
        assert fold_batchnorm(model) == count > 0
        got = model(x)
    assert not any(isinstance(m, BATCH_NORMS) for m in model.modules())
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_vgg_bn_features_and_detection_trunk():
    torch.manual_seed(0)
    features = make_features(CONFIGS["A"], batch_norm=True).eval()
    assert randomise_batchnorm(features) == 8
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = features(x)
        assert fold_batchnorm(features) == 8
        torch.testing.assert_close(features(x), expected, rtol=1e-4, atol=1e-4)
    trunk = backbones.build_backbone("resnet18", frozen_bn=True, width=8)
    randomise_batchnorm(trunk)
    with torch.no_grad():
        expected = trunk(x)["s16"]
        fold_batchnorm(trunk)
        torch.testing.assert_close(trunk(x)["s16"], expected, rtol=1e-4, atol=1e-4)


def test_conv_with_bias_and_batchnorm_in_training_mode():
    conv, bn = nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4)
    randomise_batchnorm(bn)
    with pytest.raises(ValueError, match="training mode"):
        fold_conv_bn(conv, bn)
    bn.eval()
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        expected = bn(conv(x))
        fold_conv_bn(conv, bn)
        torch.testing.assert_close(conv(x), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        fold_conv_bn(nn.Conv2d(3, 5, 1), nn.BatchNorm2d(4).eval())
