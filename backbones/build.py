"""The networks by name: ``build_classifier(name)`` and ``build_backbone(name)``.

Each network module exposes ``CLASSIFIERS`` (a plain dict name -> builder) and
``cut_for_detection(model) -> Backbone``; the ResNet family also ``cut_for_fpn(model) -> Backbone``
(C2-C5 for a Feature Pyramid Network). This module gathers them into plain dicts (no registry).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from torch import nn

from . import alexnet, cifar_resnet, googlenet, lenet, resnet, se_resnet, vgg, zfnet
from .base import Backbone, freeze_batchnorm
from .weights import load_pretrained

__all__ = [
    "CLASSIFIERS",
    "accepted_options",
    "build_backbone",
    "build_classifier",
    "fpn_networks",
    "related_networks",
]

_NETWORK_MODULES = [lenet, alexnet, zfnet, vgg, resnet, cifar_resnet, se_resnet, googlenet]

CLASSIFIERS: dict[str, Callable[..., nn.Module]] = {}
_CUTTERS: dict[str, Callable[[nn.Module], Backbone]] = {}
_FPN_CUTTERS: dict[str, Callable[[nn.Module], Backbone]] = {}
for _module in _NETWORK_MODULES:
    for _name, _builder in _module.CLASSIFIERS.items():
        CLASSIFIERS[_name] = _builder
        _CUTTERS[_name] = _module.cut_for_detection
        if hasattr(_module, "cut_for_fpn"):
            _FPN_CUTTERS[_name] = _module.cut_for_fpn


def fpn_networks() -> list[str]:
    """The networks that can be cut for a Feature Pyramid Network (C2-C5): the ResNet family."""
    return sorted(_FPN_CUTTERS)


def _check_name(name: str) -> None:
    if name not in CLASSIFIERS:
        close = difflib.get_close_matches(name, list(CLASSIFIERS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise KeyError(f"unknown network '{name}'.{hint} Available: {', '.join(sorted(CLASSIFIERS))}")


def _keyword_options(fn: Callable[..., object]) -> tuple[set[str], bool]:
    """The keyword arguments with a default of ``fn`` (num_classes aside), and whether it takes ``**kw``."""
    params = inspect.signature(fn).parameters.values()
    names = {
        p.name
        for p in params
        if p.default is not inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name != "num_classes"
    }
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def accepted_options(name: str) -> set[str]:
    """The builder options (``build_classifier(name, **options)``) of the network ``name``: the builder's
    keyword arguments, and where it forwards ``**options`` to the network class of its return type, the
    keyword arguments (with a default) of that class (and of its base classes while they forward too)."""
    _check_name(name)
    builder = CLASSIFIERS[name]
    names, forwards = _keyword_options(builder)
    fn = builder.func if isinstance(builder, functools.partial) else builder
    network = typing.get_type_hints(fn).get("return") if forwards else None
    for cls in network.__mro__ if isinstance(network, type) else ():  # a class forwarding **options up
        if not forwards or cls is nn.Module or "__init__" not in vars(cls):
            continue
        more, forwards = _keyword_options(cls.__init__)
        names |= more
    return names


def related_networks(name: str) -> dict[str, Callable[[], nn.Module]]:
    """The other layouts of the network ``name`` (``alexnet`` <-> ``alexnet_tv``, ``googlenet`` <->
    ``googlenet_bn``, ``vgg16`` <-> ``vgg16_bn``): the networks whose name extends or shortens it by one
    ``_suffix``, as zero-argument builders (for :func:`backbones.weights.describe_mismatch`)."""
    return {
        other: functools.partial(CLASSIFIERS[other], num_classes=1000)
        for other in sorted(CLASSIFIERS)
        if other.rpartition("_")[0] == name or name.rpartition("_")[0] == other
    }


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
    weights_key: str = "model.backbone.weights",
    fpn: bool = False,
    **options: Any,
) -> Backbone:
    """The network ``name`` cut for detection (see :mod:`backbones.base`; with ``fpn``, cut for a Feature
    Pyramid Network: C2-C5 and no region head, ValueError for a network outside :func:`fpn_networks`),
    optionally initialised from a
    local checkpoint (torchvision/timm state_dict, or a classifier saved by ``tools/train_classifier.py``).
    Problems with ``weights`` raise FileNotFoundError / ValueError starting with ``weights_key``, the
    config key that named the file."""
    _check_name(name)
    if fpn and name not in _FPN_CUTTERS:
        raise ValueError(
            f"{name} has no cut for a Feature Pyramid Network; networks with one: {fpn_networks()}"
        )
    model = CLASSIFIERS[name](num_classes=num_classes, **options)
    if weights:  # a trunk: the class layers are cut off below, so a different class count is no news
        load_pretrained(model, weights, trunk=True, key=weights_key, alternatives=related_networks(name))
    if frozen_bn:
        freeze_batchnorm(model)
    backbone = (_FPN_CUTTERS if fpn else _CUTTERS)[name](model)
    return backbone.freeze(freeze_at)
