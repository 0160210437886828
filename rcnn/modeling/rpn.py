"""Region Proposal Network (Ren et al., 2015): objectness and box deltas for every anchor of a feature map.

Shape shorthand:
    N: images; C: feature channels; H, W: feature map size; A: anchors per position;
    T: anchors of one image, ``H * W * A``; G: ground-truth boxes of one image; P_i: proposals of image i.

Training samples ``batch_size_per_image`` anchors per image, up to ``positive_fraction`` of them positive
(IoU >= ``fg_iou_thresh`` with a ground-truth box, or the best anchor of a box), negatives at IoU <
``bg_iou_thresh``. With ``ignore_cross_boundary`` (the paper's choice) anchors that cross the image
boundary take no part in the loss; torchvision and detectron2 keep them. At test time all anchors are
used and cross-boundary proposals are clipped. Proposals are detached: the RoI head's loss does not flow
into the box coordinates (the paper's "approximate joint training").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rcnn.ops.boxes import box_iou, nms
from rcnn.structures import Target

from .anchors import AnchorGenerator
from .box_coder import BoxCoder
from .losses import rpn_losses
from .matcher import Matcher
from .sampler import BalancedPositiveNegativeSampler


def nms_first_k(boxes: Tensor, scores: Tensor, iou_threshold: float, k: int) -> Tensor:
    """The first ``k`` indices that ``nms(boxes, scores, iou_threshold)`` keeps, computed on a prefix.

    boxes: (P, 4); scores: (P,) sorted in decreasing order (ties: the order NMS visits them in, lower index
    first). Greedy NMS decides on a box from the boxes ranked above it only, so the boxes NMS keeps among
    the first ``m`` are the first of those it keeps among all ``P``: this runs NMS on growing prefixes
    (``2k``, then x4) until ``k`` are kept or the prefix is everything. Returns (min(k, kept),) int64.
    The RPN keeps a few hundred of thousands of boxes, so this saves most of the quadratic NMS work; when
    fewer than ``k`` survive it costs up to ~1.3x one full NMS. (Equal scores straddling the prefix's end
    are visited in index order on the CPU; CUDA's NMS sorts unstably, as it does on the whole.)
    """
    total = boxes.shape[0]
    size = min(total, max(2 * k, 64))
    while True:
        keep = nms(boxes[:size], scores[:size], iou_threshold)
        if keep.numel() >= k or size == total:
            return keep[:k]
        size = min(total, 4 * size)


class RPNHead(nn.Module):
    """3x3 conv + ReLU, then sibling 1x1 convs: objectness (A) and box deltas (4A).

    ``forward(features (N, C, H, W)) -> (objectness (N, A, H, W), deltas (N, 4A, H, W))``.
    """

    def __init__(self, in_channels: int, num_anchors: int, conv_channels: int | None = None):
        super().__init__()
        conv_channels = conv_channels or in_channels
        self.conv = nn.Conv2d(in_channels, conv_channels, kernel_size=3, padding=1)
        self.cls_logits = nn.Conv2d(conv_channels, num_anchors, kernel_size=1)
        self.bbox_pred = nn.Conv2d(conv_channels, 4 * num_anchors, kernel_size=1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.relu(self.conv(features))
        return self.cls_logits(x), self.bbox_pred(x)


class RegionProposalNetwork(nn.Module):
    """``forward(features (N, C, H, W), image_sizes, targets=None) -> (proposals, losses)``.

    proposals: N tensors (P_i, 4), detached, clipped to each image's ``(height, width)``; losses:
    ``{"loss_rpn_cls", "loss_rpn_box"}`` in training, ``{}`` in eval. Proposal selection per image:
    decode, clip, drop boxes smaller than ``min_size``, the ``pre_nms_top_n`` best by objectness, NMS at
    ``nms_thresh``, the ``post_nms_top_n`` best (``_train`` / ``_test`` values by ``self.training``).
    """

    def __init__(
        self,
        anchor_generator: AnchorGenerator,
        head: RPNHead,
        box_coder: BoxCoder,
        matcher: Matcher,
        sampler: BalancedPositiveNegativeSampler,
        *,
        pre_nms_top_n_train: int = 12000,
        pre_nms_top_n_test: int = 6000,
        post_nms_top_n_train: int = 2000,
        post_nms_top_n_test: int = 300,
        nms_thresh: float = 0.7,
        min_size: float = 16.0,
        smooth_l1_beta: float = 1.0 / 9,
        ignore_cross_boundary: bool = True,
    ):
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.box_coder = box_coder
        self.matcher = matcher
        self.sampler = sampler
        self.pre_nms_top_n = {"train": pre_nms_top_n_train, "test": pre_nms_top_n_test}
        self.post_nms_top_n = {"train": post_nms_top_n_train, "test": post_nms_top_n_test}
        self.nms_thresh = nms_thresh
        self.min_size = min_size
        self.smooth_l1_beta = smooth_l1_beta
        self.ignore_cross_boundary = ignore_cross_boundary

    def forward(
        self, features: Tensor, image_sizes: list[tuple[int, int]], targets: list[Target] | None = None
    ) -> tuple[list[Tensor], dict[str, Tensor]]:
        objectness, deltas = self.head(features)  # (N, A, H, W), (N, 4A, H, W)
        anchors = self.anchor_generator(features)  # (T, 4)
        n, a, h, w = objectness.shape
        objectness = objectness.permute(0, 2, 3, 1).reshape(n, -1)  # (N, T)
        deltas = deltas.reshape(n, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, 4)  # (N, T, 4)

        proposals = self.select_proposals(anchors, objectness.detach(), deltas.detach(), image_sizes)
        losses: dict[str, Tensor] = {}
        if self.training:
            if targets is None:
                raise ValueError("the RPN needs targets in training mode")
            labels, target_deltas = self.label_anchors(anchors, targets, image_sizes)
            losses = rpn_losses(objectness, deltas, labels, target_deltas, self.smooth_l1_beta)
        return proposals, losses

    @torch.no_grad()
    def select_proposals(
        self, anchors: Tensor, objectness: Tensor, deltas: Tensor, image_sizes: list[tuple[int, int]]
    ) -> list[Tensor]:
        """anchors: (T, 4); objectness: (N, T); deltas: (N, T, 4). Returns N proposals (P_i, 4)."""
        mode = "train" if self.training else "test"
        n, num_anchors = objectness.shape
        boxes = self.box_coder.decode(deltas.reshape(-1, 4), anchors.repeat(n, 1)).reshape(n, -1, 4)
        heights, widths = objectness.new_tensor(image_sizes, dtype=torch.float32).unbind(1)  # (N,), (N,)
        boxes = torch.stack(
            [
                torch.minimum(boxes[..., 0].clamp(min=0), widths[:, None]),
                torch.minimum(boxes[..., 1].clamp(min=0), heights[:, None]),
                torch.minimum(boxes[..., 2].clamp(min=0), widths[:, None]),
                torch.minimum(boxes[..., 3].clamp(min=0), heights[:, None]),
            ],
            dim=-1,
        )  # (N, T, 4) clipped to each image
        big_enough = ((boxes[..., 2] - boxes[..., 0]) >= self.min_size) & (
            (boxes[..., 3] - boxes[..., 1]) >= self.min_size
        )
        scores = torch.where(big_enough, objectness.float(), float("-inf"))  # (N, T)
        k = min(self.pre_nms_top_n[mode], num_anchors)
        top_scores, top_idx = scores.topk(k, dim=1)  # (N, k)
        top_boxes = boxes.gather(1, top_idx[..., None].expand(n, k, 4))  # (N, k, 4)
        proposals = []
        for boxes_i, scores_i in zip(top_boxes, top_scores):
            valid = torch.isfinite(scores_i)
            boxes_i, scores_i = boxes_i[valid], scores_i[valid]
            keep = nms_first_k(boxes_i, scores_i, self.nms_thresh, self.post_nms_top_n[mode])
            proposals.append(boxes_i[keep])
        return proposals

    @torch.no_grad()
    def label_anchors(
        self, anchors: Tensor, targets: list[Target], image_sizes: list[tuple[int, int]]
    ) -> tuple[Tensor, Tensor]:
        """Sampled training labels (N, T) (1 positive, 0 negative, -1 not sampled) and regression targets
        (N, T, 4) (meaningful where the label is 1)."""
        labels, matched_boxes = [], []
        for target, (height, width) in zip(targets, image_sizes):
            gt = target["boxes"].to(anchors)
            iou = box_iou(gt, anchors)  # (G, T)
            inside = torch.ones_like(anchors[:, 0], dtype=torch.bool)
            if self.ignore_cross_boundary:
                inside = (anchors[:, 0] >= 0) & (anchors[:, 1] >= 0)
                inside &= (anchors[:, 2] <= width) & (anchors[:, 3] <= height)
                iou = torch.where(inside, iou, -1.0)  # never the best anchor of a box
            matches = self.matcher(iou)  # (T,)
            label = (matches >= 0).float()
            label = torch.where((matches == Matcher.BETWEEN_THRESHOLDS) | ~inside, -1.0, label)
            labels.append(label)
            if gt.numel():
                matched_boxes.append(gt[matches.clamp(min=0)])
            else:
                matched_boxes.append(torch.zeros_like(anchors))
        labels_t = torch.stack(labels)  # (N, T)
        positive, negative = self.sampler(labels_t)
        labels_t = torch.where(positive, 1.0, torch.where(negative, 0.0, -1.0))
        n = labels_t.shape[0]
        target_deltas = self.box_coder.encode(torch.cat(matched_boxes), anchors.repeat(n, 1))
        return labels_t, target_deltas.reshape(n, -1, 4)  # (N, T), (N, T, 4)
