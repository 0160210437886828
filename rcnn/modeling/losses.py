"""The training losses of the RPN and of the Fast R-CNN head, as pure functions.

Shape shorthand:
    N: images; A: anchors of one image (all positions and cell anchors); R: sampled RoIs of the batch;
    K: foreground classes; C: classes with their own box deltas (K, or K + 1 when background has deltas).

Both losses are normalised by the number of sampled examples (anchors or RoIs), as in detectron2 and
torchvision; an empty sample gives 0 rather than NaN, and images without objects give a box loss of 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _smooth_l1(input: Tensor, target: Tensor, beta: float) -> Tensor:
    """Elementwise smooth L1 (Huber / beta); ``beta == 0`` is plain L1."""
    if beta < 1e-5:
        return (input - target).abs()
    return F.smooth_l1_loss(input, target, reduction="none", beta=beta)


def rpn_losses(
    objectness: Tensor,
    pred_deltas: Tensor,
    labels: Tensor,
    target_deltas: Tensor,
    smooth_l1_beta: float,
) -> dict[str, Tensor]:
    """objectness: (N, A) logits; pred_deltas: (N, A, 4); labels: (N, A) float, 1 sampled positive,
    0 sampled negative, -1 not sampled; target_deltas: (N, A, 4) (only read where ``labels == 1``).

    Returns ``{"loss_rpn_cls": binary cross-entropy over the sampled anchors, "loss_rpn_box": smooth L1 over
    the positives}``, both divided by the number of sampled anchors.
    """
    sampled = labels >= 0
    positive = labels > 0
    normaliser = sampled.sum().clamp(min=1).float()
    bce = F.binary_cross_entropy_with_logits(
        objectness.float(), labels.clamp(min=0).float(), reduction="none"
    )
    loss_cls = torch.where(sampled, bce, 0.0).sum() / normaliser
    box = _smooth_l1(pred_deltas.float(), target_deltas.float(), smooth_l1_beta).sum(dim=-1)  # (N, A)
    loss_box = torch.where(positive, box, 0.0).sum() / normaliser
    return {"loss_rpn_cls": loss_cls, "loss_rpn_box": loss_box}


def fast_rcnn_losses(
    class_logits: Tensor,
    box_deltas: Tensor,
    labels: Tensor,
    target_deltas: Tensor,
    smooth_l1_beta: float,
) -> dict[str, Tensor]:
    """class_logits: (R, K+1); box_deltas: (R, 4C) class-specific, C = K (no background deltas) or K + 1;
    labels: (R,) int64 in 0..K; target_deltas: (R, 4) (only read for foreground RoIs).

    Returns ``{"loss_cls": softmax cross-entropy, "loss_box": smooth L1 on the deltas of each foreground
    RoI's ground-truth class}``, both divided by R.
    """
    num_rois, num_logits = class_logits.shape
    normaliser = max(num_rois, 1)
    loss_cls = F.cross_entropy(class_logits.float(), labels, reduction="sum") / normaliser
    deltas = box_deltas.float().reshape(num_rois, box_deltas.shape[1] // 4, 4)  # (R, C, 4)
    offset = 1 if deltas.shape[1] == num_logits - 1 else 0  # column of class k is k - offset
    column = (labels - offset).clamp(min=0)  # (R,)
    chosen = deltas.gather(1, column[:, None, None].expand(num_rois, 1, 4)).squeeze(1)  # (R, 4)
    box = _smooth_l1(chosen, target_deltas.float(), smooth_l1_beta).sum(dim=-1)  # (R,)
    loss_box = torch.where(labels > 0, box, 0.0).sum() / normaliser
    return {"loss_cls": loss_cls, "loss_box": loss_box}
