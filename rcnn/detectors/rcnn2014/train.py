"""Training R-CNN (Girshick et al., 2014): the stages after fine-tuning, each resumable. The pipeline that
runs them in order, with the fine-tuning stage (stage 1, :mod:`rcnn.detectors.rcnn2014.finetune` through
the Trainer), is :func:`rcnn.tasks.rcnn2014.train_rcnn`.

2. **Extract** pool5 features of every proposal and ground-truth box of every training image into a
   :class:`rcnn.detectors.rcnn2014.feature_cache.FeatureCache` (``model.rcnn.cache_dir``, default
   ``output.dir/features``). An interrupted extraction continues from the last complete chunk. As in the
   original code only pool5 is cached; fc7 is computed from it by the box head when the SVMs read it.
3. **Scale**: the mean L2 norm of the SVM features (and of pool5) on the first chunks sets a factor making
   it ``feature_norm`` (20, the original code's ``feat_norm_mean`` rule).
4. **SVMs**, one per class, with hard-negative mining streaming the chunks
   (:mod:`rcnn.detectors.rcnn2014.svm`).
5. **Box regression** on pool5 (:mod:`rcnn.detectors.rcnn2014.bbox_regressor`).

Shape shorthand: G: gt boxes of an image; P: its proposals; R = G + P rows; K: classes; Dp: pool5 size.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from rcnn.config import ConfigError
from rcnn.config_schema import DetectionConfig
from rcnn.data.collate import collate_detection
from rcnn.data.errors import DatasetError
from rcnn.detectors.rcnn2014.bbox_regressor import fit_box_regressor
from rcnn.detectors.rcnn2014.feature_cache import FeatureCache
from rcnn.detectors.rcnn2014.model import RCNN
from rcnn.detectors.rcnn2014.svm import train_svms
from rcnn.ops.boxes import box_iou

logger = logging.getLogger(__name__)


def weights_fingerprint(model: RCNN) -> str:
    """SHA-1 of the network's weights (trunk and box head): identifies the features they compute."""
    digest = hashlib.sha1()
    for part in (model.backbone, model.box_head):
        for name, tensor in sorted(part.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- 2. extract
def image_rows(
    model: RCNN, image: Tensor, target: dict[str, Any], num_classes: int, dtype: torch.dtype
) -> dict[str, Tensor]:
    """The cache rows of one image: its gt boxes then its proposals (R = G + P), see
    :mod:`rcnn.detectors.rcnn2014.feature_cache` for the fields."""
    device = model.pixel_mean.device
    proposals = target["proposals"].float()
    if model.max_proposals > 0:
        proposals = proposals[: model.max_proposals]
    gt_boxes, gt_labels = target["boxes"].float(), target["labels"].long()
    boxes = torch.cat([gt_boxes, proposals])  # (R, 4)
    rows = boxes.shape[0]
    ious = torch.zeros(rows, num_classes)
    max_iou, best_boxes, best_labels = (
        torch.zeros(rows),
        torch.zeros(rows, 4),
        torch.zeros(rows, dtype=torch.long),
    )
    if gt_boxes.shape[0]:
        iou = box_iou(gt_boxes, boxes)  # (G, R)
        for label in gt_labels.unique().tolist():
            ious[:, label - 1] = iou[gt_labels == label].max(dim=0).values
        max_iou, best = iou.max(dim=0)
        best_boxes, best_labels = gt_boxes[best], gt_labels[best]
    normalised = model.normalise(image.to(device))
    features = [
        model.pool5(model.warp(normalised, boxes[s : s + model.batch_size].to(device)))
        .flatten(1)
        .to(dtype)
        .cpu()
        for s in range(0, rows, model.batch_size)
    ]
    return {
        "features": torch.cat(features) if features else torch.zeros(0, model.pool5_dim, dtype=dtype),
        "boxes": boxes,
        "image_ids": torch.full((rows,), int(target["image_id"]), dtype=torch.int64),
        "is_gt": torch.arange(rows) < gt_boxes.shape[0],
        "ious": ious.half(),
        "max_iou": max_iou,
        "gt_boxes": best_boxes,
        "gt_labels": best_labels,
    }


@torch.no_grad()
def extract_features(
    model: RCNN,
    dataset,
    cache: FeatureCache,
    num_classes: int,
    *,
    dtype: torch.dtype = torch.float16,
    num_workers: int = 0,
    progress: bool = True,
) -> FeatureCache:
    """Stage 2: pool5 features of every image of ``dataset`` not yet in ``cache``; marks it complete."""
    if cache.complete:
        logger.info("feature cache %s is complete (%d rows)", cache.directory, cache.num_rows)
        return cache
    done = cache.done_images
    todo = [i for i, image_id in enumerate(dataset.ids) if image_id not in done]
    if done:
        logger.info("feature cache %s: %d images done, %d to go", cache.directory, len(done), len(todo))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, todo),
        batch_size=1,
        num_workers=num_workers,
        collate_fn=collate_detection,
    )
    was_training = model.training
    model.eval()
    try:
        for images, targets in tqdm(loader, desc="features", disable=not progress, dynamic_ncols=True):
            target = targets[0]
            if "proposals" not in target:
                image_id = int(target["image_id"])
                message = "the dataset gives no 'proposals' (data.train_proposals)"
                raise DatasetError(message, image_id=image_id)
            cache.add(int(target["image_id"]), image_rows(model, images[0], target, num_classes, dtype))
        cache.finish()
    finally:
        model.train(was_training)
    logger.info("feature cache %s: %d rows in %d chunks", cache.directory, cache.num_rows, len(cache))
    return cache


# ------------------------------------------------------------------------------------------------ 3. scale
def mean_norm(values: Iterable[Tensor], max_rows: int = 20000) -> float:
    """Mean L2 norm of the rows of the first ``max_rows`` rows of ``values`` (tensors (R, D))."""
    total, count = 0.0, 0
    for x in values:
        x = x[: max_rows - count].float()
        total += float(x.norm(dim=1).sum())
        count += x.shape[0]
        if count >= max_rows:
            break
    if count == 0:
        raise ValueError("no features to compute the feature scale from: the feature cache is empty")
    return total / count


@torch.no_grad()
def svm_feature_chunks(model: RCNN, cache: FeatureCache, scale: float = 1.0) -> Iterator[dict[str, Tensor]]:
    """The cache's chunks with ``features`` replaced by the SVM features (fc7 computed from pool5 by the box
    head, or pool5 itself) times ``scale``."""
    if model.training:
        raise RuntimeError("svm_feature_chunks: put the model in eval mode first (dropout)")
    device = model.pixel_mean.device
    c = model.backbone.output_shape()[model.in_feature].channels
    q = model.pool_size
    for chunk in cache.iter_chunks(("features", "is_gt", "gt_labels", "ious")):
        pool5 = chunk["features"]
        parts = [
            model.svm_features(pool5[s : s + 1024].float().to(device).view(-1, c, q, q)).cpu()
            for s in range(0, pool5.shape[0], 1024)
        ]
        chunk["features"] = (torch.cat(parts) if parts else pool5.new_zeros(0, model.feature_dim)) * scale
        yield chunk


# ----------------------------------------------------------------------------------------- 4-5. SVMs, boxes
def train_heads(
    model: RCNN, cache: FeatureCache, cfg: DetectionConfig, *, progress: bool = True
) -> list[dict]:
    """Stages 3-5 on a complete cache: set the feature scales, the SVMs and the box regressors of
    ``model.heads`` (the model is left in eval mode). Returns the SVM training log."""
    r = cfg.model.rcnn
    heads = model.heads
    model.eval()
    feature_scale = r.feature_norm / mean_norm(c["features"] for c in svm_feature_chunks(model, cache))
    pool5_scale = r.feature_norm / mean_norm(c["features"] for c in cache.iter_chunks(("features",)))
    heads.feature_scale.fill_(feature_scale)
    heads.bbox_scale.fill_(pool5_scale)
    logger.info("feature scales: SVM x %.4g, pool5 x %.4g (mean norm %g)",
                feature_scale, pool5_scale, r.feature_norm)  # fmt: skip

    def bar(iterable: Iterable, desc: str) -> Iterable:
        return tqdm(iterable, desc=desc, total=len(cache), disable=not progress, dynamic_ncols=True)

    weights, biases, log = train_svms(
        lambda: svm_feature_chunks(model, cache, feature_scale),
        model.num_classes,
        C=r.svm_C,
        pos_weight=r.svm_pos_weight,
        neg_iou=r.svm_neg_iou,
        init_negatives=r.svm_init_negatives,
        rounds=r.hard_negative_rounds,
        seed=cfg.solver.seed,
        progress=bar,
    )
    heads.svm_weight.copy_(weights)
    heads.svm_bias.copy_(biases)
    if r.bbox_reg:
        fit_box_regressors(model, cache, r.bbox_reg_iou, r.bbox_reg_lambda)
    return log


def fit_box_regressors(model: RCNN, cache: FeatureCache, min_iou: float = 0.6, lam: float = 1000.0) -> None:
    """Stage 5: per class, ridge regression from scaled pool5 features to the deltas of the rows with
    IoU >= ``min_iou`` with their best gt box (of that class)."""
    heads = model.heads
    coder = heads.box_coder
    feats, deltas, labels = [], [], []
    for chunk in cache.iter_chunks(("features", "boxes", "gt_boxes", "gt_labels", "max_iou")):
        keep = (chunk["max_iou"] >= min_iou) & (chunk["gt_labels"] > 0)
        feats.append(chunk["features"][keep].float() * heads.bbox_scale.cpu())
        deltas.append(coder.encode(chunk["gt_boxes"][keep], chunk["boxes"][keep]))
        labels.append(chunk["gt_labels"][keep])
    x, y, labels = torch.cat(feats), torch.cat(deltas), torch.cat(labels)
    for c in range(model.num_classes):
        rows = labels == c + 1
        if not rows.any():
            logger.warning("class %d: no box-regression examples (IoU >= %g); boxes left as proposed", c + 1,
                           min_iou)  # fmt: skip
            continue
        fit = fit_box_regressor(x[rows], y[rows], lam)
        heads.bbox_beta[c].copy_(fit["beta"])
        heads.bbox_mu[c].copy_(fit["mu"])
        heads.bbox_t_inv[c].copy_(fit["t_inv"])
        heads.bbox_trained[c] = 1.0
    logger.info("box regression: %d examples, lambda %g", x.shape[0], lam)


def cache_params(cfg: DetectionConfig, model: RCNN, num_classes: int) -> dict[str, Any]:
    """What identifies the cached features of a run (see :class:`FeatureCache`)."""
    m, r = cfg.model, cfg.model.rcnn
    return {
        "backbone": m.backbone.name,
        "backbone_options": m.backbone.options,
        "weights_sha1": weights_fingerprint(model),
        "input_size": r.input_size,
        "context_padding": r.context_padding,
        "pool_size": model.pool_size,
        "max_proposals": r.max_proposals,
        "dtype": r.cache_dtype,
        "num_classes": num_classes,
        "annotations": os.path.abspath(cfg.data.train_annotations),
        "proposals": os.path.abspath(cfg.data.train_proposals),
        "image_size": [cfg.test.min_size, cfg.test.max_size],
        "pixel_mean": m.pixel_mean,
        "pixel_std": m.pixel_std,
    }


def cache_dtype(name: str) -> torch.dtype:
    dtypes = {"float16": torch.float16, "float32": torch.float32}
    if name not in dtypes:
        raise ConfigError(f"model.rcnn.cache_dtype must be one of {sorted(dtypes)}, got {name!r}")
    return dtypes[name]
