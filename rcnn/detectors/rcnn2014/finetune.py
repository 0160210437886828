"""Fine-tuning the CNN of R-CNN on warped region proposals (Girshick et al., 2014, sec. 2.3).

The ImageNet classifier is replaced by a randomly initialised (K + 1)-way softmax layer and the whole net is
trained with SGD on warped proposals: a proposal with IoU >= 0.5 with a ground-truth box takes that box's
class (the gt boxes themselves are positives too), every other one is background. Each mini-batch holds 32
positive windows (over all classes) and 96 background windows, "biasing the sampling towards positive
windows because they are extremely rare compared to background".

Shape shorthand:
    G: ground-truth boxes of an image; P: its proposals; M: candidate windows (G + P per image);
    B: sampled windows (at most batch_pos + batch_neg); K: foreground classes; S: warped size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rcnn.detectors.rcnn2014.model import RCNN
from rcnn.ops.boxes import box_iou
from rcnn.structures import Target


def label_windows(
    proposals: Tensor, gt_boxes: Tensor, gt_labels: Tensor, fg_iou: float = 0.5
) -> tuple[Tensor, Tensor]:
    """The candidate windows of one image, gt boxes first: ``boxes (G + P, 4)`` and ``labels (G + P,)``, the
    class of the best-overlapping gt box when its IoU is >= ``fg_iou``, else 0 (background)."""
    boxes = torch.cat([gt_boxes.float(), proposals.float().to(gt_boxes.device)])
    labels = torch.zeros(boxes.shape[0], dtype=torch.int64, device=boxes.device)
    if gt_boxes.shape[0]:
        best_iou, best_gt = box_iou(gt_boxes.float(), boxes).max(dim=0)  # (M,)
        labels = torch.where(best_iou >= fg_iou, gt_labels[best_gt], labels)
    return boxes, labels


def sample_windows(
    labels: Tensor, batch_pos: int = 32, batch_neg: int = 96, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Indices of ``min(batch_pos, #positives)`` random positives (label > 0) and ``min(batch_neg,
    #background)`` random background windows (label 0) of labels (M,), without replacement."""
    positive = torch.nonzero(labels > 0).flatten()
    negative = torch.nonzero(labels == 0).flatten()
    device = labels.device
    pos = positive[torch.randperm(positive.numel(), generator=generator).to(device)[:batch_pos]]
    neg = negative[torch.randperm(negative.numel(), generator=generator).to(device)[:batch_neg]]
    return pos, neg


class FinetuneModel(nn.Module):
    """``model(images, targets) -> {"loss_cls"}``: the softmax loss of an :class:`RCNN`'s network
    (trunk, box head, ``cls_score``) on a mini-batch of warped windows sampled from the images' proposals
    (``targets[i]["proposals"]``) and ground truth, for :class:`rcnn.engine.trainer.Trainer`."""

    def __init__(self, rcnn: RCNN, *, fg_iou: float = 0.5, batch_pos: int = 32, batch_neg: int = 96):
        super().__init__()
        self.rcnn = rcnn
        self.fg_iou = float(fg_iou)
        self.batch_pos = int(batch_pos)
        self.batch_neg = int(batch_neg)

    def forward(self, images: list[Tensor], targets: list[Target]) -> dict[str, Tensor]:
        if targets is None or len(targets) != len(images):
            raise ValueError("fine-tuning needs one target (boxes, labels, proposals) per image")
        model = self.rcnn
        windows, labels, owners = [], [], []
        for i, target in enumerate(targets):
            if "proposals" not in target:
                raise KeyError(f"targets[{i}] (image_id={target.get('image_id', '?')}): no 'proposals'")
            proposals = target["proposals"]
            if model.max_proposals > 0:
                proposals = proposals[: model.max_proposals]
            boxes, window_labels = label_windows(proposals, target["boxes"], target["labels"], self.fg_iou)
            windows.append(boxes)
            labels.append(window_labels)
            owners.append(torch.full_like(window_labels, i))
        boxes, labels, owners = torch.cat(windows), torch.cat(labels), torch.cat(owners)  # (M, 4), (M,), (M,)
        pos, neg = sample_windows(labels, self.batch_pos, self.batch_neg)
        chosen = torch.cat([pos, neg])  # (B,)
        if chosen.numel() == 0:
            zero = sum(p.sum() for p in model.cls_score.parameters()) * 0.0
            return {"loss_cls": zero}
        crops = [
            model.warp(model.normalise(images[i]), boxes[chosen[owners[chosen] == i]])
            for i in range(len(images))
        ]
        order = torch.cat([chosen[owners[chosen] == i] for i in range(len(images))])  # crops' window order
        logits = model.cls_score(model.fc7(model.pool5(torch.cat(crops))))  # (B, K + 1)
        return {"loss_cls": F.cross_entropy(logits, labels[order])}
