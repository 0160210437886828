"""Classification networks of the ILSVRC era, usable as classifiers and as detector backbones.

    model = build_classifier("resnet50", num_classes=1000)        # images -> logits
    load_pretrained(model, "resnet50-0676ba61.pth")                 # torchvision state_dict, local file
    trunk = build_backbone("vgg16", weights="vgg16.pth", freeze_at=2)
    trunk.output_shape()   # {"s16": FeatureSpec(channels=512, stride=16)}
    head = trunk.make_box_head()   # fc6-fc7, (R, 512, 7, 7) -> (R, 4096)

Each network module exposes ``CLASSIFIERS`` (a plain dict name -> builder) and
``cut_for_detection(model) -> Backbone``; this file only gathers them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch import nn

from .base import Backbone, BoxHead, FeatureSpec, freeze_batchnorm
from .weights import WeightsError, load_pretrained

_NETWORK_MODULES = ["lenet", "alexnet", "zfnet", "vgg", "resnet", "cifar_resnet", "se_resnet", "googlenet"]

CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {}
_CUTTERS: dict[str, Callable[[nn.Module], Backbone]] = {}
for _module_name in _NETWORK_MODULES:
    _module = importlib.import_module(f"{__name__}.{_module_name}")
    for _name, _builder in _module.CLASSIFIERS.items():
        CLASSIFIERS[_name] = _builder
        _CUTTERS[_name] = _module.cut_for_detection


def _check_name(name: str) -> None:
    if name not in CLASSIFIERS:
        import difflib

        close = difflib.get_close_matches(name, list(CLASSIFIERS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise KeyError(f"unknown network '{name}'.{hint} Available: {', '.join(sorted(CLASSIFIERS))}")


def build_classifier(name: str, num_classes: int = 1000, **options: Any) -> nn.Module:
    """The classification network ``name``: ``(N, 3, H, W) -> (N, num_classes)`` logits
    (GoogLeNet in training mode also returns its two auxiliary logits)."""
    _check_name(name)
    return CLASSIFIERS[name](num_classes=num_classes, **options)


def build_backbone(
    name: str,
    *,
    weights: str | None = None,
    freeze_at: int = 0,
    frozen_bn: bool = False,
    num_classes: int = 1000,
    **options: Any,
) -> Backbone:
    """The network ``name`` cut for detection (see :mod:`backbones.base`), optionally initialised from a
    local checkpoint (torchvision/timm state_dict, or a classifier saved by ``tools/train_classifier.py``)."""
    _check_name(name)
    model = CLASSIFIERS[name](num_classes=num_classes, **options)
    if weights:
        load_pretrained(model, weights)
    if frozen_bn:
        freeze_batchnorm(model)
    backbone = _CUTTERS[name](model)
    return backbone.freeze(freeze_at)


__all__ = [
    "Backbone",
    "BoxHead",
    "FeatureSpec",
    "CLASSIFIERS",
    "build_backbone",
    "build_classifier",
    "freeze_batchnorm",
    "load_pretrained",
    "WeightsError",
]
