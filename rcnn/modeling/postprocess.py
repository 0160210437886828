"""Turning Fast R-CNN head outputs into detections, as a pure function.

Shape shorthand:
    N: images; R: RoIs of the batch (``sum(P_i)``); P_i: RoIs of image i; K: foreground classes;
    C: classes with their own box deltas (K, or K + 1 when background has deltas); D: detections kept.

Per image: softmax scores, class-specific boxes decoded from the RoIs and clipped to the image, then
``score > score_thresh``, boxes smaller than ``min_size`` dropped, per-class NMS (one batched call, no
loop over classes) or Soft-NMS, and the ``detections_per_img`` best kept.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rcnn.ops.boxes import batched_nms, clip_boxes_to_image, remove_small_boxes
from rcnn.ops.soft_nms import batched_soft_nms
from rcnn.structures import Detections

from .box_coder import BoxCoder

SOFT_NMS_METHODS = ("none", "linear", "gaussian")


def fast_rcnn_inference(
    class_logits: Tensor,
    box_deltas: Tensor,
    proposals: list[Tensor],
    image_sizes: list[tuple[int, int]],
    box_coder: BoxCoder,
    *,
    score_thresh: float = 0.05,
    nms_thresh: float = 0.3,
    detections_per_img: int = 100,
    min_size: float = 1e-2,
    soft_nms: str = "none",
    soft_nms_sigma: float = 0.5,
) -> list[Detections]:
    """class_logits: (R, K+1); box_deltas: (R, 4C); proposals: N tensors (P_i, 4) with ``sum(P_i) == R``;
    image_sizes: N ``(height, width)``. Returns N ``{"boxes" (D, 4), "labels" (D,) in 1..K, "scores" (D,)}``
    sorted by decreasing score.

    soft_nms: "none" (hard NMS at ``nms_thresh``), or "linear" / "gaussian" Soft-NMS (Bodla et al., 2017)
    with ``nms_thresh`` as the linear method's overlap threshold, ``soft_nms_sigma`` as the gaussian's
    sigma, and boxes whose decayed score falls below ``score_thresh`` dropped.
    """
    if soft_nms not in SOFT_NMS_METHODS:
        raise ValueError(f"soft_nms must be one of {SOFT_NMS_METHODS}, got {soft_nms!r}")
    num_classes = class_logits.shape[1] - 1
    scores = torch.softmax(class_logits.float(), dim=-1)[:, 1:]  # (R, K)
    all_proposals = torch.cat(proposals) if proposals else class_logits.new_zeros((0, 4))
    boxes = box_coder.decode(box_deltas, all_proposals)
    boxes = boxes.reshape(len(all_proposals), box_deltas.shape[1] // 4, 4)  # (R, C, 4)
    boxes = boxes[:, -num_classes:]  # (R, K, 4): drop background's deltas when there are any
    counts = [len(p) for p in proposals]
    results = []
    for boxes_i, scores_i, size in zip(boxes.split(counts), scores.split(counts), image_sizes):
        results.append(
            _detections_one_image(
                clip_boxes_to_image(boxes_i, size),
                scores_i,
                score_thresh=score_thresh,
                nms_thresh=nms_thresh,
                detections_per_img=detections_per_img,
                min_size=min_size,
                soft_nms=soft_nms,
                soft_nms_sigma=soft_nms_sigma,
            )
        )
    return results


def _detections_one_image(
    boxes: Tensor,
    scores: Tensor,
    *,
    score_thresh: float,
    nms_thresh: float,
    detections_per_img: int,
    min_size: float,
    soft_nms: str,
    soft_nms_sigma: float,
) -> Detections:
    """boxes: (P, K, 4) clipped; scores: (P, K). Returns the image's detections."""
    num_classes = scores.shape[1]
    labels = torch.arange(1, num_classes + 1, device=scores.device).expand_as(scores)  # (P, K)
    boxes, scores, labels = boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)  # (P*K, ...)
    keep = torch.nonzero(scores > score_thresh).flatten()
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    keep = remove_small_boxes(boxes, min_size)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if soft_nms == "none":
        keep = batched_nms(boxes, scores, labels, nms_thresh)[:detections_per_img]
    else:
        keep, scores = batched_soft_nms(
            boxes,
            scores,
            labels,
            method=soft_nms,
            sigma=soft_nms_sigma,
            iou_threshold=nms_thresh,
            score_threshold=score_thresh,
        )
        order = scores.argsort(descending=True)[:detections_per_img]
        keep, scores = keep[order], scores[order]
        return {"boxes": boxes[keep], "labels": labels[keep], "scores": scores}
    return {"boxes": boxes[keep], "labels": labels[keep], "scores": scores[keep]}
