"""The detector benchmark's cases and models: a config at an image size, our Faster R-CNN built from it with
calibrated random weights, torchvision's ``FasterRCNN`` around it (:mod:`tools.benchmarks.torchvision_pair`),
the optimized copy, random inputs, and the inference / training calls that are timed.

Models are seeded, so every process (the peak-memory children too) builds the same ones.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig, ModelConfig
from rcnn.utils.comm import resolve_amp_dtype
from tools.benchmarks.torchvision_pair import build_pair, torchvision_faster_rcnn

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "faster_rcnn"
MODELS = ("torchvision", "ours", "ours_optimized")


@dataclass(frozen=True)
class Case:
    """One row group of the table: a config at one image size."""

    name: str
    config: str  # file name under configs/faster_rcnn
    num_classes: int
    height: int
    width: int
    infer_batches: tuple[int, ...]
    train_batch: int


FULL_CASES = (
    Case("ResNet-50 C4, 600x1000", "resnet50_c4.yaml", 80, 600, 1000, (1, 4), 2),
    Case("synthetic ResNet-18/16, 256x256", "synthetic_resnet18.yaml", 9, 256, 256, (1, 4), 2),
)
QUICK_CASES = (Case("synthetic ResNet-18/16, 128x128", "synthetic_resnet18.yaml", 9, 128, 128, (1, 2), 2),)


def case_from_dict(values: dict) -> Case:
    """The :class:`Case` of ``dataclasses.asdict(case)`` (after a JSON round trip)."""
    return Case(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def load_model_config(case: Case) -> ModelConfig:
    """The case's ``cfg.model``, with ``model.rpn.min_size=0`` (so that ours and torchvision's compute the
    same detections)."""
    return load_config(CONFIGS / case.config, DetectionConfig, ["model.rpn.min_size=0"]).model


@torch.no_grad()
def calibrate(
    model: nn.Module, image: Tensor, *, objectness_std: float = 2.0, score_std: float = 3.0
) -> None:
    """Redraw the RPN objectness / deltas and the class-score / box-delta layers of our ``model`` so that,
    on ``image``, the logits spread by about ``objectness_std`` / ``score_std`` and the deltas by ~0.1.

    A fresh initialisation gives near-constant scores (no detection passes the score threshold) or, on
    the activations of a deep trunk without trained batch norm, saturated ones (ties everywhere).
    """
    rpn_head, predictor = model.proposal_generator.head, model.roi_heads.predictor
    seen: dict[str, Tensor] = {}
    hooks = [
        rpn_head.cls_logits.register_forward_pre_hook(lambda m, a: seen.__setitem__("rpn", a[0])),
        predictor.register_forward_pre_hook(lambda m, a: seen.__setitem__("roi", a[0])),
    ]
    was_training = model.training
    try:
        model.eval()
        model([image])
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    gen = torch.Generator().manual_seed(0)
    rpn_norm = seen["rpn"].norm(dim=1).median().clamp(min=1e-6)  # per position, over channels
    roi_norm = seen["roi"].flatten(1).norm(dim=1).median().clamp(min=1e-6)  # per RoI
    for layer, std in (
        (rpn_head.cls_logits, objectness_std / rpn_norm),
        (rpn_head.bbox_pred, 0.1 / rpn_norm),
        (predictor.cls_score, score_std / roi_norm),
        (predictor.bbox_pred, 0.1 / roi_norm),
    ):
        weight = torch.randn(layer.weight.shape, generator=gen) * float(std)
        layer.weight.copy_(weight.to(layer.weight))


def build_models(case: Case, *, training: bool, device: str, which: tuple[str, ...] = MODELS) -> dict:
    """The models of ``which`` for ``case``, identical in every process (seeded)."""
    ours, _ = build_pair(load_model_config(case), case.num_classes, seed=0)
    if not training:
        gen = torch.Generator().manual_seed(1)
        calibrate(ours, torch.rand(3, min(case.height, 256), min(case.width, 256), generator=gen) * 255)
    ours = ours.to(device)
    models: dict[str, nn.Module] = {}
    if training:
        ours.proposal_generator.ignore_cross_boundary = False  # as torchvision's RPN (see build_pair)
        ours.train()
        if "torchvision" in which:
            models["torchvision"] = torchvision_faster_rcnn(copy.deepcopy(ours))  # its own weights to train
        if "ours_optimized" in which:
            models["ours_optimized"] = copy.deepcopy(ours).use_channels_last()
    else:
        ours.eval()
        if "torchvision" in which:
            models["torchvision"] = torchvision_faster_rcnn(ours)  # shares the trunk and the region head
        if "ours_optimized" in which:
            models["ours_optimized"] = copy.deepcopy(ours).optimize_for_inference()
    if "ours" in which:
        models["ours"] = ours
    return {name: models[name] for name in which}


def make_inputs(case: Case, batch: int, device: str, seed: int = 0) -> tuple[list[Tensor], list[dict]]:
    """``batch`` random RGB images of the case's size and 3-6 random boxes on each."""
    gen = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(batch):
        images.append((torch.rand(3, case.height, case.width, generator=gen) * 255).to(device))
        n = int(torch.randint(3, 7, (), generator=gen))
        wh = torch.rand(n, 2, generator=gen) * 0.4 + 0.1  # 10-50% of the side
        xy = torch.rand(n, 2, generator=gen) * (1 - wh)
        scale = torch.tensor([case.width, case.height], dtype=torch.float32)
        boxes = torch.cat([xy * scale, (xy + wh) * scale], dim=1)
        labels = torch.randint(1, case.num_classes + 1, (n,), generator=gen)
        targets.append({"boxes": boxes.to(device), "labels": labels.to(device)})
    return images, targets


def make_step(
    model: nn.Module, images: list[Tensor], targets: list[dict], amp_dtype: torch.dtype | None = None
) -> Callable[[], None]:
    """One training iteration: forward (under autocast to ``amp_dtype`` when given, as the trainer's
    ``solver.amp``), backward, SGD step with momentum."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-5, momentum=0.9, weight_decay=1e-4)
    device_type = images[0].device.type

    def step() -> None:
        with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
            losses = model(images, targets)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    return step


def training_amp_dtype(model_name: str, device: str) -> torch.dtype | None:
    """The autocast dtype of a model's training step: the optimized model trains as ``solver.amp: true``
    does (bf16 on a CPU with native bf16, fp16 on CUDA; fp32 where the CPU has no native bf16)."""
    if model_name != "ours_optimized":
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the table says which dtype ran
        return resolve_amp_dtype(True, torch.device(device), None)


def make_inference(model: nn.Module, images: list[Tensor]) -> Callable[[], list[dict]]:
    def infer() -> list[dict]:
        with torch.inference_mode():
            return model(images)

    return infer
