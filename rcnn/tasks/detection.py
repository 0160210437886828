"""Detection task glue used by the tools: datasets from a config, inference over a dataset with
detections mapped back to the original file's pixels, COCO evaluation, and the detector checkpoint
format (:func:`save_detector` / :func:`load_detector`).

The model sees images after the data transforms (resized); the evaluator and the results JSON speak in
the pixels of the image files, so boxes are rescaled by ``orig_size / size`` here, at the edge.

A detector checkpoint is ``{"model": state_dict, "extra": {"metadata": DetectorMetadata, ...}}``: the
layout of the :class:`~rcnn.engine.trainer.Trainer`'s checkpoints (which save :class:`MetadataState`
under ``extra/metadata``), so ``model_final.pth`` and every ``model_<iter>.pth`` load the same way.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, TypedDict

import torch
from torch import Tensor, nn
from tqdm import tqdm

from backbones import WeightsError
from backbones.weights import load_state
from rcnn.config_schema import DetectionConfig
from rcnn.data.coco import CocoDetection
from rcnn.data.collate import collate_detection
from rcnn.data.samplers import TrainingSampler, build_batch_data_loader
from rcnn.data.transforms import build_detection_transforms
from rcnn.detectors.build import build_detector
from rcnn.evaluation.coco import COCOEvaluator
from rcnn.modeling.svd import compress_box_head
from rcnn.structures import Detections
from rcnn.utils.io import CheckpointError, atomic_save, atomic_write_json, load_checkpoint

logger = logging.getLogger(__name__)


def build_detection_dataset(cfg: DetectionConfig, split: str, *, train: bool | None = None):
    """The COCO-format dataset of ``split`` ("train" or "val") with the config's transforms.

    ``train`` selects training transforms and filtering (defaults to ``split == "train"``).
    """
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    train = (split == "train") if train is None else train
    d = cfg.data
    images, annotations = (
        (d.train_images, d.train_annotations)
        if split == "train"
        else (
            d.val_images,
            d.val_annotations,
        )
    )
    proposals = d.train_proposals if split == "train" else d.val_proposals
    if train:
        transforms = build_detection_transforms(
            True, d.min_size, d.max_size, hflip_prob=d.hflip_prob, color_jitter=d.color_jitter
        )
    else:
        transforms = build_detection_transforms(False, [cfg.test.min_size], cfg.test.max_size)
    return CocoDetection(
        images,
        annotations,
        transforms,
        filter_empty=d.filter_empty if train else False,
        skip_invalid=d.skip_invalid,
        proposals_file=proposals or None,
    )


def build_detection_train_loader(cfg: DetectionConfig, dataset, *, rank: int = 0, world_size: int = 1):
    """The infinite, resumable training loader of ``dataset``: ``cfg.solver.ims_per_batch`` images per batch
    from a seeded :class:`~rcnn.data.samplers.TrainingSampler` (this rank's shard), variable-size images
    collated as lists, aspect-ratio grouping as ``cfg.data`` says. Its ``batch_sampler`` is what the
    :class:`~rcnn.engine.trainer.Trainer` saves for an exact resume."""
    sampler = TrainingSampler(
        len(dataset), seed=cfg.solver.seed, rank=rank, world_size=world_size, keyed=True
    )
    return build_batch_data_loader(
        dataset,
        sampler,
        cfg.solver.ims_per_batch,
        collate_detection,
        num_workers=cfg.data.num_workers,
        aspect_ratio_grouping=cfg.data.aspect_ratio_grouping,
    )


def to_original_pixels(det: Detections, size: Tensor, orig_size: Tensor) -> Detections:
    """Rescale detections from the transformed image (``size`` = [H, W]) to the file's ``orig_size``."""
    scale_y = float(orig_size[0]) / float(size[0])
    scale_x = float(orig_size[1]) / float(size[1])
    scale = det["boxes"].new_tensor([scale_x, scale_y, scale_x, scale_y])
    boxes = det["boxes"] * scale
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, float(orig_size[1]))
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, float(orig_size[0]))
    return {"boxes": boxes, "labels": det["labels"], "scores": det["scores"]}


def _move(x: Any, device: torch.device) -> Any:
    if isinstance(x, Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: _move(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_move(v, device) for v in x)
    return x


@torch.inference_mode()
def run_inference(
    model: nn.Module,
    dataset,
    device: torch.device,
    *,
    batch_size: int = 1,
    num_workers: int = 0,
    progress: bool = True,
) -> list[tuple[int, Detections]]:
    """Run ``model`` over ``dataset``; returns ``[(image_id, detections in file pixels), ...]``.

    Detectors with ``needs_proposals`` (Fast R-CNN, R-CNN) get each image's ``proposals`` from the
    dataset's targets.
    """
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_detection
    )
    was_training = model.training
    model.eval()
    outputs: list[tuple[int, Detections]] = []
    needs_proposals = model.needs_proposals
    try:
        for images, targets in tqdm(loader, desc="inference", disable=not progress, dynamic_ncols=True):
            images = [img.to(device, non_blocking=True) for img in images]
            if needs_proposals:
                dets = model(images, proposals=[t["proposals"].to(device) for t in targets])
            else:
                dets = model(images)
            for det, target in zip(dets, targets):
                det = {k: v.detach().float().cpu() if k != "labels" else v.cpu() for k, v in det.items()}
                outputs.append(
                    (int(target["image_id"]), to_original_pixels(det, target["size"], target["orig_size"]))
                )
    finally:
        model.train(was_training)
    return outputs


def evaluate_detector(
    model: nn.Module,
    dataset,
    device: torch.device,
    output_dir: str | None = None,
    *,
    batch_size: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """COCO-evaluate ``model`` on ``dataset``; writes ``detections.json`` (COCO results) and
    ``metrics.json`` to ``output_dir`` when given. Returns the metrics dict."""
    evaluator = COCOEvaluator(dataset.coco, dataset.label_to_category)
    for image_id, det in run_inference(model, dataset, device, batch_size=batch_size, progress=progress):
        evaluator.add(image_id, det)
    results_file = None
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        results_file = os.path.join(output_dir, "detections.json")
        evaluator.write_results(results_file)
    metrics = evaluator.evaluate()
    if output_dir:
        atomic_write_json(metrics, os.path.join(output_dir, "metrics.json"))
    return metrics


class DetectorMetadata(TypedDict):
    """What a saved detector needs besides its weights to be used on new images: the names of labels
    1..K and the dataset's category id of each label."""

    class_names: list[str]
    label_to_category: dict[int, int]


def detector_metadata(dataset) -> DetectorMetadata:
    """The :class:`DetectorMetadata` of a :class:`~rcnn.data.coco.CocoDetection` (its training set)."""
    return {
        "class_names": list(dataset.class_names),
        "label_to_category": {int(k): int(v) for k, v in dataset.label_to_category.items()},
    }


class MetadataState:
    """:class:`DetectorMetadata` as the Trainer's ``extra_state`` (``state_dict`` / ``load_state_dict``),
    so every training checkpoint carries it under ``extra/metadata``."""

    def __init__(self, metadata: DetectorMetadata) -> None:
        self.metadata = metadata

    def state_dict(self) -> DetectorMetadata:
        return {
            "class_names": list(self.metadata["class_names"]),
            "label_to_category": dict(self.metadata["label_to_category"]),
        }

    def load_state_dict(self, state: DetectorMetadata) -> None:
        self.metadata = {
            "class_names": list(state["class_names"]),
            "label_to_category": {int(k): int(v) for k, v in state["label_to_category"].items()},
        }


def save_detector(path: str, model: nn.Module, metadata: DetectorMetadata, **extra: Any) -> str:
    """Write ``model``'s weights and ``metadata`` (plus any ``extra`` entries, e.g. a training log) to
    ``path`` atomically, in the format :func:`load_detector` reads. Returns ``path``."""
    meta = MetadataState(metadata).state_dict()
    return atomic_save({"model": model.state_dict(), "extra": {"metadata": meta, **extra}}, path)


DETECTOR_PREFIXES = ("backbone.", "roi_heads.", "proposal_generator.")  # a detector's state_dict keys


def load_detector(cfg: DetectionConfig, checkpoint: str, device: torch.device) -> tuple[nn.Module, dict]:
    """Build the detector of ``cfg`` and load ``checkpoint`` (a training checkpoint or ``model_final.pth``).

    Returns ``(model in eval mode on device, metadata)``; metadata has ``class_names`` and
    ``label_to_category`` when the checkpoint recorded them (:func:`save_detector` and the Trainer's
    checkpoints of ``tools/train_detector.py`` do); a checkpoint without them gives ``{}``. With
    ``model.roi_heads.svd_rank > 0`` the fully connected layers of the region head are replaced by their
    truncated SVD (Fast R-CNN, Sec. 3.1: :func:`rcnn.modeling.svd.compress_box_head`).
    """
    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    try:
        state = load_checkpoint(checkpoint, weights_only=True)
    except CheckpointError:
        raise
    except Exception as e:  # pickle, zip and format errors all mean "not a checkpoint we can read"
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{checkpoint}: not a checkpoint readable with torch.load(weights_only=True) ({detail})"
        ) from None
    weights = state.get("model", state)
    if not isinstance(weights, dict) or not all(isinstance(v, Tensor) for v in weights.values()):
        raise CheckpointError(f"{checkpoint}: no detector weights (expected a state_dict under 'model')")
    if not any(k.startswith(DETECTOR_PREFIXES) for k in weights):
        raise CheckpointError(
            f"{checkpoint}: this is a classifier checkpoint, not a detector's; use "
            f"model.backbone.weights={checkpoint} to start a detector from it"
        )
    meta = dict((state.get("extra") or {}).get("metadata") or {})
    if "label_to_category" in meta:
        meta["label_to_category"] = {int(k): int(v) for k, v in meta["label_to_category"].items()}
    num_classes = cfg.model.num_classes or len(meta.get("class_names", []))
    if not num_classes:
        # infer K from the classifier layer: cls_score has K + 1 outputs
        keys = [k for k in weights if k.endswith("cls_score.weight")]
        if not keys:
            raise CheckpointError(f"{checkpoint}: cannot tell the number of classes; set model.num_classes")
        num_classes = weights[keys[0]].shape[0] - 1
    model_cfg = cfg.model
    if model_cfg.backbone.weights:  # the checkpoint holds every weight: skip the ImageNet file
        model_cfg = dataclasses.replace(
            model_cfg, backbone=dataclasses.replace(model_cfg.backbone, weights="")
        )
    model = build_detector(model_cfg, num_classes)
    try:
        load_state(model, weights, source=checkpoint, strict_classes=True)
    except WeightsError as e:
        raise CheckpointError(
            f"{e}\n  (the weights do not fit the config's model: is it the training run's config?)"
        ) from None
    if model_cfg.roi_heads.svd_rank > 0:
        compress_box_head(model, model_cfg.roi_heads.svd_rank)
    return model.to(device).eval(), meta
