"""torchvision detection checkpoints in rcnn's layout: ``fasterrcnn_resnet50_fpn`` (v1) state_dicts.

    state = torch.load("fasterrcnn_resnet50_fpn_coco.pth")
    ours = convert_torchvision_fpn(state)      # loads into build_detector(cfg.model, K) strictly,
                                               # cfg = configs/faster_rcnn/resnet50_fpn.yaml

torchvision's model is the one :func:`rcnn.detectors.build.build_fpn_detector` builds (ResNet trunk, FPN
with P6 by max-pooling, a shared RPN head, multi-scale RoIAlign, TwoMLPHead) under other names:

==========================================  ==============================================
torchvision                                 rcnn
==========================================  ==============================================
``backbone.body.conv1`` / ``bn1``           ``backbone.body.stages.stem.0`` / ``stem.1``
``backbone.body.layerK``                    ``backbone.body.stages.layerK``
``backbone.fpn.inner_blocks.i[.0]``         ``backbone.inner_blocks.i`` (``layer_blocks`` alike)
``rpn.head.conv[.0.0]``, ``cls_logits``...  ``proposal_generator.head.conv``, ...
``roi_heads.box_head.fc6`` / ``fc7``        ``roi_heads.box_head.fc6`` / ``fc7``
``roi_heads.box_predictor.*``               ``roi_heads.predictor.*``
==========================================  ==============================================

torchvision counts the background among its ``num_classes`` (91 for COCO: K = 90 here) and predicts box
deltas for it, which its postprocessing drops: those four rows of ``bbox_pred`` are dropped here, so the
detections are the same. Batch-norm ``num_batches_tracked`` counters are dropped (rcnn's FPN configs
freeze batch norm, ``model.backbone.frozen_bn``). Both the older (``inner_blocks.i.weight``,
``rpn.head.conv.weight``) and the newer (``inner_blocks.i.0.weight``, ``rpn.head.conv.0.0.weight``)
spellings of torchvision are read.
"""

from __future__ import annotations

import re

from torch import Tensor

_RULES: list[tuple[str, str]] = [
    (r"^backbone\.body\.conv1\.", "backbone.body.stages.stem.0."),
    (r"^backbone\.body\.bn1\.", "backbone.body.stages.stem.1."),
    (r"^backbone\.body\.(layer[1-4])\.", r"backbone.body.stages.\1."),
    (r"^backbone\.fpn\.(inner_blocks|layer_blocks)\.(\d+)\.(?:0\.)?(weight|bias)$", r"backbone.\1.\2.\3"),
    (r"^rpn\.head\.conv\.(?:0\.0\.)?(weight|bias)$", r"proposal_generator.head.conv.\1"),
    (r"^rpn\.head\.(cls_logits|bbox_pred)\.", r"proposal_generator.head.\1."),
    (r"^roi_heads\.box_head\.(fc6|fc7)\.", r"roi_heads.box_head.\1."),
    (r"^roi_heads\.box_predictor\.(cls_score|bbox_pred)\.", r"roi_heads.predictor.\1."),
]


def is_torchvision_detector(state: dict[str, Tensor]) -> bool:
    """True for a state_dict with torchvision's detection names (``rpn.head.*``,
    ``roi_heads.box_predictor.*``)."""
    return any(k.startswith("roi_heads.box_predictor.") for k in state) and any(
        k.startswith("rpn.head.") for k in state
    )


def convert_torchvision_fpn(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A torchvision ``fasterrcnn_resnet50_fpn`` (v1; any ResNet depth, any class count) state_dict in the
    names of rcnn's FPN detector. Raises ValueError naming the keys it cannot place."""
    if not is_torchvision_detector(state):
        raise ValueError(
            "not a torchvision detection state_dict: no 'rpn.head.*' and 'roi_heads.box_predictor.*' keys "
            f"(first keys: {sorted(state)[:5]})"
        )
    out: dict[str, Tensor] = {}
    unknown = []
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            continue
        for pattern, replacement in _RULES:
            new, hits = re.subn(pattern, replacement, key)
            if hits:
                out[new] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(
            f"keys of no FPN detector part (a v2 or a Mask/Keypoint R-CNN model?): {unknown[:8]}"
        )
    for name in ("weight", "bias"):  # background deltas: torchvision predicts and drops them
        key = f"roi_heads.predictor.bbox_pred.{name}"
        if key in out:
            out[key] = out[key][4:].clone()
    return out


def torchvision_class_count(state: dict[str, Tensor]) -> int:
    """K, the foreground classes of a torchvision detection state_dict (its ``num_classes`` minus 1)."""
    return int(state["roi_heads.box_predictor.cls_score.weight"].shape[0]) - 1
