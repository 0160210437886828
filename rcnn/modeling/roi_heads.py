"""The Fast R-CNN head (Girshick, 2015): per-RoI features, class scores and class-specific box deltas.

Shape shorthand:
    N: images; C: feature channels; P_i: proposals of image i; R: RoIs of the batch (sampled in training,
    all proposals in eval); S: pooled size; D: box head output width; K: foreground classes.

Training: ground-truth boxes are appended to the proposals (``add_gt_as_proposals``), ``batch_size_per_image``
RoIs are sampled per image, up to ``positive_fraction`` foreground (IoU >= ``fg_iou_thresh``), background
at IoU in ``[bg_iou_thresh_lo, bg_iou_thresh_hi)`` (Fast R-CNN used [0.1, 0.5)). Features -> predictions
(:class:`FastRCNNPredictor`) -> loss (:func:`~rcnn.modeling.losses.fast_rcnn_losses`) or postprocess
(:func:`~rcnn.modeling.postprocess.fast_rcnn_inference`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rcnn.ops.boxes import box_iou
from rcnn.structures import Detections, Target

from .box_coder import BoxCoder
from .losses import fast_rcnn_losses
from .matcher import Matcher
from .postprocess import SOFT_NMS_METHODS, fast_rcnn_inference
from .sampler import BalancedPositiveNegativeSampler


class FastRCNNPredictor(nn.Module):
    """Sibling linear layers on the box head's features: ``(R, D) -> (scores (R, K+1), deltas (R, 4C))``.

    C = K (detectron2; background has no deltas) or K + 1 with ``background_deltas=True`` (Fast R-CNN,
    torchvision). Init: normal std 0.01 for the scores, 0.001 for the deltas, biases 0.
    """

    def __init__(self, in_channels: int, num_classes: int, *, background_deltas: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.cls_score = nn.Linear(in_channels, num_classes + 1)
        self.bbox_pred = nn.Linear(in_channels, 4 * (num_classes + int(background_deltas)))
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        nn.init.zeros_(self.cls_score.bias)
        nn.init.zeros_(self.bbox_pred.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.flatten(1)  # (R, D)
        return self.cls_score(x), self.bbox_pred(x)


class RoIHeads(nn.Module):
    """``forward(features (N, C, H, W), proposals, image_sizes, targets=None) -> (detections, losses)``;
    features may also be a dict of pyramid levels, which the pooler reads.

    pooler: RoIPool / RoIAlign module (``(features, list of (R_i, 4)) -> (R, C, S, S)``, with its spatial
    scale set) or :class:`~rcnn.modeling.poolers.MultiScaleRoIAlign` (``({name: (N, C, H_l, W_l)}, ...)``);
    box_head: ``(R, C, S, S) -> (R, D)``; predictor: :class:`FastRCNNPredictor`. Training returns
    ``([], {"loss_cls", "loss_box"})``, eval ``(detections per image, {})``.
    """

    def __init__(
        self,
        pooler: nn.Module,
        box_head: nn.Module,
        predictor: FastRCNNPredictor,
        box_coder: BoxCoder,
        matcher: Matcher,
        sampler: BalancedPositiveNegativeSampler,
        *,
        bg_iou_thresh_lo: float = 0.0,
        add_gt_as_proposals: bool = True,
        smooth_l1_beta: float = 1.0,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.3,
        detections_per_img: int = 100,
        soft_nms: str = "none",
        soft_nms_sigma: float = 0.5,
    ):
        super().__init__()
        if soft_nms not in SOFT_NMS_METHODS:
            raise ValueError(f"soft_nms must be one of {SOFT_NMS_METHODS}, got {soft_nms!r}")
        self.pooler = pooler
        self.box_head = box_head
        self.predictor = predictor
        self.box_coder = box_coder
        self.matcher = matcher
        self.sampler = sampler
        self.bg_iou_thresh_lo = bg_iou_thresh_lo
        self.add_gt_as_proposals = add_gt_as_proposals
        self.smooth_l1_beta = smooth_l1_beta
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_img = detections_per_img
        self.soft_nms = soft_nms
        self.soft_nms_sigma = soft_nms_sigma
        self.channels_last = False  # pooled RoIs handed to the box head channels-last (NHWC)

    @property
    def num_classes(self) -> int:
        return self.predictor.num_classes

    def forward(
        self,
        features: Tensor | dict[str, Tensor],
        proposals: list[Tensor],
        image_sizes: list[tuple[int, int]],
        targets: list[Target] | None = None,
    ) -> tuple[list[Detections], dict[str, Tensor]]:
        if self.training:
            if targets is None:
                raise ValueError("the RoI heads need targets in training mode")
            proposals, labels, target_deltas = self.sample_proposals(proposals, targets)
        pooled = self.pooler(features, proposals)  # (R, C, S, S)
        if self.channels_last:
            pooled = pooled.contiguous(memory_format=torch.channels_last)
        class_logits, box_deltas = self.predictor(self.box_head(pooled))  # (R, K+1), (R, 4C)
        if self.training:
            return [], fast_rcnn_losses(class_logits, box_deltas, labels, target_deltas, self.smooth_l1_beta)
        detections = fast_rcnn_inference(
            class_logits,
            box_deltas,
            proposals,
            image_sizes,
            self.box_coder,
            score_thresh=self.score_thresh,
            nms_thresh=self.nms_thresh,
            detections_per_img=self.detections_per_img,
            soft_nms=self.soft_nms,
            soft_nms_sigma=self.soft_nms_sigma,
        )
        return detections, {}

    @torch.no_grad()
    def sample_proposals(
        self, proposals: list[Tensor], targets: list[Target]
    ) -> tuple[list[Tensor], Tensor, Tensor]:
        """Training RoIs per image (R_i, 4), their labels (R,) in 0..K and regression targets (R, 4)."""
        rois, labels, target_deltas = [], [], []
        for props, target in zip(proposals, targets):
            gt_boxes = target["boxes"].to(props)
            gt_labels = target["labels"].to(props.device)
            if self.add_gt_as_proposals:
                props = torch.cat([props, gt_boxes])
            iou = box_iou(gt_boxes, props)  # (G, P)
            matches = self.matcher(iou)  # (P,)
            label = torch.where(matches >= 0, 1, torch.where(matches == Matcher.BELOW_LOW_THRESHOLD, 0, -1))
            if self.bg_iou_thresh_lo > 0:
                max_iou = iou.max(dim=0).values if len(gt_boxes) else torch.zeros_like(props[:, 0])
                label = torch.where((label == 0) & (max_iou < self.bg_iou_thresh_lo), -1, label)
            positive, negative = self.sampler(label)
            keep = torch.nonzero(positive | negative).flatten()
            matched = matches[keep].clamp(min=0)
            rois.append(props[keep])
            if len(gt_boxes):
                labels.append(torch.where(positive[keep], gt_labels[matched], 0))
                target_deltas.append(self.box_coder.encode(gt_boxes[matched], props[keep]))
            else:
                labels.append(torch.zeros_like(keep))
                target_deltas.append(torch.zeros_like(props[keep]))
        return rois, torch.cat(labels), torch.cat(target_deltas)
