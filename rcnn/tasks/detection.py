"""Detection task glue used by the tools: datasets from a config, inference over a dataset with
detections mapped back to the original file's pixels, and COCO evaluation.

The model sees images after the data transforms (resized); the evaluator and the results JSON speak in
the pixels of the image files, so boxes are rescaled by ``orig_size / size`` here, at the edge.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from rcnn.config_schema import DetectionConfig
from rcnn.structures import Detections

logger = logging.getLogger(__name__)


def build_detection_dataset(cfg: DetectionConfig, split: str, *, train: bool | None = None):
    """The COCO-format dataset of ``split`` ("train" or "val") with the config's transforms.

    ``train`` selects training transforms and filtering (defaults to ``split == "train"``).
    """
    from rcnn.data.coco import CocoDetection
    from rcnn.data.transforms import build_detection_transforms

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
    from rcnn.data.collate import collate_detection
    from rcnn.data.samplers import TrainingSampler, build_batch_data_loader

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

    Fast R-CNN models (no RPN) get each image's ``proposals`` from the dataset's targets.
    """
    from rcnn.data.collate import collate_detection

    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_detection
    )
    was_training = model.training
    model.eval()
    outputs: list[tuple[int, Detections]] = []
    needs_proposals = getattr(model, "proposal_generator", None) is None and hasattr(model, "roi_heads")
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
    import json

    from rcnn.evaluation.coco import COCOEvaluator

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
        tmp = os.path.join(output_dir, "metrics.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2)
        os.replace(tmp, os.path.join(output_dir, "metrics.json"))
    return metrics


def detector_metadata(dataset) -> dict[str, Any]:
    """What a saved detector needs besides its weights to be used on new images."""
    return {
        "class_names": list(dataset.class_names),
        "label_to_category": {int(k): int(v) for k, v in dataset.label_to_category.items()},
    }


def load_detector(cfg: DetectionConfig, checkpoint: str, device: torch.device) -> tuple[nn.Module, dict]:
    """Build the detector of ``cfg`` and load ``checkpoint`` (a training checkpoint or ``model_final.pth``).

    Returns ``(model in eval mode on device, metadata)``; metadata has ``class_names`` and
    ``label_to_category`` when the checkpoint recorded them (``tools/train_detector.py`` does). With
    ``model.roi_heads.svd_rank > 0`` the fully connected layers of the region head are replaced by their
    truncated SVD (Fast R-CNN, Sec. 3.1: :func:`rcnn.modeling.svd.compress_box_head`).
    """
    from rcnn.detectors.build import build_detector
    from rcnn.utils.io import load_checkpoint

    if not os.path.isfile(checkpoint):
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    state = load_checkpoint(checkpoint, weights_only=False)
    weights = state.get("model", state)
    meta = (state.get("extra") or {}).get("metadata") or state.get("metadata") or {}
    num_classes = cfg.model.num_classes or len(meta.get("class_names", []))
    if not num_classes:
        # infer K from the classifier layer: cls_score has K + 1 outputs
        keys = [k for k in weights if k.endswith("cls_score.weight")]
        if not keys:
            raise ValueError(f"{checkpoint}: cannot tell the number of classes; set model.num_classes")
        num_classes = weights[keys[0]].shape[0] - 1
    model_cfg = cfg.model
    if model_cfg.backbone.weights:  # the checkpoint holds every weight: skip the ImageNet file
        import dataclasses

        model_cfg = dataclasses.replace(
            model_cfg, backbone=dataclasses.replace(model_cfg.backbone, weights="")
        )
    model = build_detector(model_cfg, num_classes)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{checkpoint}: weights do not fit the config's model ({e})") from None
    if model_cfg.roi_heads.svd_rank > 0:
        from rcnn.modeling.svd import compress_box_head

        compress_box_head(model, model_cfg.roi_heads.svd_rank)
    return model.to(device).eval(), meta
