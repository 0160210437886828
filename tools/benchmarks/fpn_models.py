"""The fpn benchmark's cases and models: torchvision's own ``fasterrcnn_resnet50_fpn`` with random weights,
rcnn's R50-FPN (``configs/faster_rcnn/resnet50_fpn.yaml``) loaded with the converted state_dict
(:mod:`rcnn.detectors.torchvision_weights`), and rcnn's R50-C4 (``configs/faster_rcnn/resnet50_c4.yaml``).

torchvision's model is built as its pretrained recipe builds it (``FrozenBatchNorm2d``, the stem and
``layer1`` frozen, as ``trainable_backbone_layers=3``), which is also what the rcnn config does
(``freeze_at: 2``, ``frozen_bn: true``): the two train the same parameters. Batch-norm statistics are
drawn away from the identity; the RPN objectness / deltas and the class-score / box-delta layers are
redrawn on rcnn's model by :func:`tools.benchmarks.detector_models.calibrate` (logits of a trained model's
spread) and copied back into torchvision's, so that both hold the same weights and give non-trivial
detections. torchvision's transform normalises with the same pixel mean / std (0..255 images, as rcnn
takes them) and never resizes; both pad to a multiple of 64: torchvision's P6 anchors take the stride
``padded size // P6 size``, 64 (rcnn's) only on such a batch.

Models are seeded, so every process (the peak-memory children too) builds the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
from torchvision.ops.misc import FrozenBatchNorm2d

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig, ModelConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.generalized_rcnn import GeneralizedRCNN
from rcnn.detectors.torchvision_weights import convert_torchvision_fpn
from tools.benchmarks.detector_models import calibrate, make_inference, make_inputs, make_step
from tools.benchmarks.torchvision_pair import NoResizeTransform

__all__ = ["make_inference", "make_inputs", "make_step"]  # the timed calls are the detector section's

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "faster_rcnn"
FPN_CONFIG, C4_CONFIG = "resnet50_fpn.yaml", "resnet50_c4.yaml"
MODELS = ("torchvision", "ours")  # the torchvision pair; "ours_c4" is rcnn's R50-C4
NUM_CLASSES = 90  # COCO's: torchvision's num_classes=91 counts the background
SIZE_DIVISIBLE = 64

# Smaller top-n and RoI samples (both models alike) for the quick variant
SMALL = {
    "model.rpn.pre_nms_top_n_test": 200,
    "model.rpn.post_nms_top_n_test": 100,
    "model.rpn.pre_nms_top_n_train": 200,
    "model.rpn.post_nms_top_n_train": 100,
    "model.roi_heads.batch_size_per_image": 64,
}
_TORCHVISION_NAMES = {
    "model.rpn.pre_nms_top_n_test": "rpn_pre_nms_top_n_test",
    "model.rpn.post_nms_top_n_test": "rpn_post_nms_top_n_test",
    "model.rpn.pre_nms_top_n_train": "rpn_pre_nms_top_n_train",
    "model.rpn.post_nms_top_n_train": "rpn_post_nms_top_n_train",
    "model.roi_heads.batch_size_per_image": "box_batch_size_per_image",
}


@dataclass(frozen=True)
class Case:
    """One row group: an image size, the batches it runs at, and the configs' settings or :data:`SMALL`."""

    name: str
    height: int
    width: int
    infer_batches: tuple[int, ...]
    train_batch: int
    small: bool = False
    num_classes: int = NUM_CLASSES


FULL_CASES = (
    Case("R50-FPN, 600x1000", 600, 1000, (1, 4), 2),
    Case("R50-FPN, 256x256", 256, 256, (1, 4), 2),
)
QUICK_CASES = (Case("R50-FPN, 64x128 (small top-n)", 64, 128, (1, 2), 1, small=True),)


def case_from_dict(values: dict) -> Case:
    """The :class:`Case` of ``dataclasses.asdict(case)`` (after a JSON round trip)."""
    return Case(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _settings(case: Case) -> list[str]:
    return [f"{k}={v}" for k, v in SMALL.items()] if case.small else []


def model_config(case: Case, config: str = FPN_CONFIG) -> ModelConfig:
    """``cfg.model`` of ``config`` (under configs/faster_rcnn) with the case's settings."""
    return load_config(CONFIGS / config, DetectionConfig, _settings(case)).model


@torch.no_grad()
def _frozen_bn_trunk(tv: FasterRCNN, gen: torch.Generator) -> None:
    """torchvision's pretrained recipe on random weights: ``FrozenBatchNorm2d`` with statistics away from the
    identity, the stem and ``layer1`` frozen (``trainable_backbone_layers=3``)."""
    body = tv.backbone.body
    for parent in list(body.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                c = child.num_features
                frozen = FrozenBatchNorm2d(c, eps=child.eps)
                frozen.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                frozen.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                frozen.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                frozen.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
                setattr(parent, name, frozen)
    for name, p in body.named_parameters():
        p.requires_grad_(name.startswith(("layer2", "layer3", "layer4")))


@torch.no_grad()
def _copy_calibrated(ours: GeneralizedRCNN, tv: FasterRCNN) -> None:
    """The layers :func:`calibrate` redrew, from rcnn's model back into torchvision's (torchvision also
    predicts background deltas, which it drops: zeros)."""
    head, predictor = ours.proposal_generator.head, ours.roi_heads.predictor
    tv.rpn.head.cls_logits.weight.copy_(head.cls_logits.weight)
    tv.rpn.head.bbox_pred.weight.copy_(head.bbox_pred.weight)
    tv_predictor = tv.roi_heads.box_predictor
    tv_predictor.cls_score.weight.copy_(predictor.cls_score.weight)
    tv_predictor.bbox_pred.weight.zero_()
    tv_predictor.bbox_pred.bias.zero_()
    tv_predictor.bbox_pred.weight[4:].copy_(predictor.bbox_pred.weight)
    tv_predictor.bbox_pred.bias[4:].copy_(predictor.bbox_pred.bias)


def build_pair(case: Case, seed: int = 0) -> tuple[FasterRCNN, GeneralizedRCNN]:
    """torchvision's ``fasterrcnn_resnet50_fpn`` (random, calibrated) and rcnn's R50-FPN with its weights,
    both in eval mode, computing the same detections."""
    torch.manual_seed(seed)
    extra = {_TORCHVISION_NAMES[k]: v for k, v in SMALL.items()} if case.small else {}
    tv = fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=case.num_classes + 1, **extra
    )
    _frozen_bn_trunk(tv, torch.Generator().manual_seed(seed + 1))
    ours = build_detector(model_config(case), case.num_classes)
    ours.load_state_dict(convert_torchvision_fpn(tv.state_dict()), strict=True)
    ours.size_divisibility = SIZE_DIVISIBLE
    gen = torch.Generator().manual_seed(seed + 2)
    calibrate(ours, torch.rand(3, min(case.height, 256), min(case.width, 256), generator=gen) * 255)
    _copy_calibrated(ours, tv)
    mean, std = ours.pixel_mean.flatten().tolist(), ours.pixel_std.flatten().tolist()
    tv.transform = NoResizeTransform(1, 1, mean, std, size_divisible=SIZE_DIVISIBLE)  # 0..255, no resizing
    return tv.eval(), ours.eval()


def build_c4(case: Case, seed: int = 0) -> GeneralizedRCNN:
    """rcnn's R50-C4 (``configs/faster_rcnn/resnet50_c4.yaml``, the case's settings), random calibrated
    weights, eval mode."""
    torch.manual_seed(seed)
    model = build_detector(model_config(case, C4_CONFIG), case.num_classes)
    gen = torch.Generator().manual_seed(seed + 2)
    calibrate(model, torch.rand(3, min(case.height, 256), min(case.width, 256), generator=gen) * 255)
    return model.eval()


def build_models(case: Case, *, training: bool, device: str, which: tuple[str, ...] = MODELS) -> dict:
    """The models of ``which`` ("torchvision", "ours", "ours_c4") for ``case``, identical in every process
    (seeded). For training each has its own weights (copies of the same)."""
    models: dict[str, nn.Module] = {}
    if "torchvision" in which or "ours" in which:
        tv, ours = build_pair(case)
        models.update(torchvision=tv, ours=ours)
    if "ours_c4" in which:
        models["ours_c4"] = build_c4(case)
    return {name: models[name].train(training).to(device) for name in which}


def training_amp_dtype(model_name: str, device: str) -> None:
    """Every model of this section trains in float32 (no autocast)."""
    return None
