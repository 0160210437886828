"""The contract of every network in ``backbones.CLASSIFIERS`` (see backbones/base.py), checked for each one
automatically: logits, the feature dict and its declared shape, measured strides, the region head,
freezing and frozen batch norm.

The networks are built and run on the ``meta`` device: real shapes, modules and flags without memory or
arithmetic, so the 30-odd networks (VGG-19, ResNet-152, ...) take seconds. Numerical behaviour (pretrained
weights, equality with torchvision) is tested per network.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from backbones import CLASSIFIERS, build_backbone, build_classifier

NAMES = sorted(CLASSIFIERS)
NUM_CLASSES = 5

# Input side for each network; 64 unless it needs more (or, for LeNet, exactly 32). GoogLeNet's auxiliary
# classifiers (training mode) pool a 14x14 map to 4x4 before a 2048-input fc, as in the paper.
BACKBONE_SIZE = {"lenet5": 32, "alexnet": 96}
CLASSIFIER_SIZE = {**BACKBONE_SIZE, "googlenet": 224}


def test_registry_is_complete_and_names_are_checked():
    for name in ("lenet5", "alexnet", "alexnet_tv", "zfnet", "vgg11", "vgg16", "vgg16_bn", "vgg19_bn"):
        assert name in CLASSIFIERS
    with pytest.raises(KeyError, match="Did you mean 'vgg16'"):
        build_classifier("vgg16x")


@pytest.mark.parametrize("name", NAMES)
def test_classifier_gives_logits(name):
    size = CLASSIFIER_SIZE.get(name, 64)
    with torch.device("meta"):  # shapes only; the per-network tests run real images
        model = build_classifier(name, num_classes=NUM_CLASSES)
        x = torch.zeros(2, 3, size, size)
        model.train()
        out = model(x)
        model.eval()
        logits = model(x)
    outputs = out if isinstance(out, (tuple, list)) else (out,)  # GoogLeNet: (logits, aux1, aux2)
    assert all(o.shape == (2, NUM_CLASSES) for o in outputs)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, NUM_CLASSES)


@pytest.mark.parametrize("name", NAMES)
def test_backbone_contract(name):
    size = BACKBONE_SIZE.get(name, 64)
    with torch.device("meta"):
        backbone = build_backbone(name, num_classes=NUM_CLASSES, freeze_at=1, frozen_bn=True).eval()
        classifier = build_classifier(name, num_classes=NUM_CLASSES)
    specs = backbone.output_shape()
    assert specs and all(key == f"s{spec.stride}" for key, spec in specs.items())
    top = max(spec.stride for spec in specs.values())

    a = backbone(torch.zeros(1, 3, size, size, device="meta"))
    b = backbone(torch.zeros(1, 3, size + top, size + 2 * top, device="meta"))
    assert a.keys() == b.keys() == specs.keys()
    for key, spec in specs.items():
        assert a[key].shape[:2] == (1, spec.channels)
        # measured stride: `top` more input pixels give top / stride more cells
        grown = (b[key].shape[2] - a[key].shape[2], b[key].shape[3] - a[key].shape[3])
        assert grown == (top // spec.stride, 2 * top // spec.stride), f"{key}: stride is not {spec.stride}"

    head = backbone.make_box_head()
    channels = specs[f"s{top}"].channels
    regions = head(torch.zeros(2, channels, head.resolution, head.resolution, device="meta"))
    assert regions.shape == (2, head.out_channels)

    stem, *rest = backbone.stage_names
    stem_params = list(backbone.stages[stem].parameters())
    assert stem_params and not any(p.requires_grad for p in stem_params)
    assert all(p.requires_grad for n in rest for p in backbone.stages[n].parameters())
    assert all(p.requires_grad for p in head.parameters())

    assert not any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())  # the head included
    had_bn = any(isinstance(m, nn.BatchNorm2d) for m in classifier.modules())
    assert had_bn == any(isinstance(m, FrozenBatchNorm2d) for m in backbone.modules())


@pytest.mark.parametrize("name", NAMES)
def test_backbone_defaults_train_everything(name):
    with torch.device("meta"):
        backbone = build_backbone(name)
    assert all(p.requires_grad for p in backbone.parameters())  # freeze_at=0
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in backbone.modules())  # frozen_bn=False
