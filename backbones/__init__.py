"""Classification networks of the ILSVRC era, usable as classifiers and as detector backbones.

    model = build_classifier("resnet50", num_classes=1000)        # images -> logits
    load_pretrained(model, "resnet50-0676ba61.pth")                 # torchvision state_dict, local file
    trunk = build_backbone("vgg16", weights="vgg16.pth", freeze_at=2)
    trunk.output_shape()   # {"s16": FeatureSpec(channels=512, stride=16)}
    head = trunk.make_box_head()   # fc6-fc7, (R, 512, 7, 7) -> (R, 4096)

Submodules:

- :mod:`.base`: ``Backbone``, ``BoxHead``, ``FeatureSpec``, ``freeze_batchnorm``;
- :mod:`.build`: ``CLASSIFIERS`` (name -> builder), ``build_classifier``, ``build_backbone``,
  ``accepted_options``, ``related_networks``, ``fpn_networks`` (``build_backbone(name, fpn=True)``: C2-C5);
- :mod:`.weights`: ``load_pretrained`` (torchvision / timm checkpoints, local files), ``describe_mismatch``;
- one module per network, each with ``CLASSIFIERS`` and ``cut_for_detection`` (the ResNet family also
  ``cut_for_fpn``): :mod:`.lenet`,
  :mod:`.alexnet`, :mod:`.zfnet`, :mod:`.vgg`, :mod:`.resnet`, :mod:`.cifar_resnet`, :mod:`.se_resnet`,
  :mod:`.googlenet`;
- :mod:`.fuse`: folding frozen batch norm into the convolutions; :mod:`.summary`: per-layer table.
"""

from .base import Backbone, BoxHead, FeatureSpec, freeze_batchnorm
from .build import (
    CLASSIFIERS,
    accepted_options,
    build_backbone,
    build_classifier,
    fpn_networks,
    related_networks,
)
from .weights import WeightsError, describe_mismatch, load_pretrained

__all__ = [
    "CLASSIFIERS",
    "Backbone",
    "BoxHead",
    "FeatureSpec",
    "accepted_options",
    "build_backbone",
    "build_classifier",
    "describe_mismatch",
    "fpn_networks",
    "freeze_batchnorm",
    "load_pretrained",
    "related_networks",
    "WeightsError",
]
