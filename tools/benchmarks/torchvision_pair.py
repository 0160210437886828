"""torchvision's Faster R-CNN built around one of our detectors: the same function, other code.

:func:`torchvision_faster_rcnn` turns a :class:`~rcnn.detectors.generalized_rcnn.GeneralizedRCNN` with an
RPN into a ``torchvision.models.detection.FasterRCNN`` that

* **shares** our trunk (``model.backbone``) and region head (``model.roi_heads.box_head``): the same module
  objects, so the same weights;
* **copies** the RPN head's weights (3x3 conv, objectness, deltas) into torchvision's ``RPNHead`` and the
  predictor's into torchvision's ``FastRCNNPredictor`` (torchvision predicts deltas for the background
  class too, and drops them: those four rows are zeros);
* uses **the same anchors** (a torchvision ``AnchorGenerator`` whose grid comes from ours: torchvision's own
  rounds the cell anchors to integers, orders them ratio-major and centres them at ``x * stride``; ours are
  exact, size-major and centred at ``(x + 0.5) * stride``), the same pre/post-NMS top-n, NMS thresholds,
  RPN minimum size, box coder weights and clamp, score threshold, detections per image, matcher
  thresholds and sampler sizes;
* pools with **torchvision's own op** (``torchvision.ops.RoIPool`` / ``RoIAlign`` with our pooler's output
  size, sampling ratio, alignment and spatial scale) as a single-level pooler, in place of torchvision's
  ``MultiScaleRoIAlign`` (ours runs its own CPU RoIAlign kernels, forward and backward: the same values);
* normalises the same ``0..255`` images with our pixel mean / std and pads them to the same multiple
  (``model.size_divisibility``), and **never resizes** (ours does not; torchvision's
  ``GeneralizedRCNNTransform.resize`` is replaced by the identity, so its boxes come back unscaled).

Differences that remain, all deliberate:

1. **RPN small-box filter.** Ours drops proposals narrower or shorter than ``min_size`` *before* taking the
   ``pre_nms_top_n`` best, as the proposal layer of Ren et al. (2015) does; torchvision takes the top-n
   first and filters after. With ``min_size == 0`` nothing is filtered and the proposals are the same; with
   ``min_size > 0`` they differ only when a small box is among the top-n (then ours lets the next best in).
2. **RPN scores.** Ours ranks proposals by objectness logits, torchvision by their sigmoid: the same order,
   so NMS keeps the same boxes (in float32 the sigmoid saturates at logits above ~17, where ties could
   reorder equal-probability boxes).
3. **Class-aware NMS.** Both move each class to its own region of the plane and run one NMS, ours by the
   rank of the class over the boxes' full extent, torchvision by ``class * (max + 1)`` (and by a loop over
   classes above 4,000 boxes on the CPU): IoUs of shifted coordinates can differ in the last bit, which
   only matters for an IoU within rounding of the threshold.
4. **Anchors** are cached per feature-map size in ours and recomputed at every call in torchvision's.
5. **Training** (compared for speed only; the random samples differ anyway): torchvision's RPN keeps
   anchors that cross the image boundary (ours ignores them unless ``ignore_cross_boundary=False``, which
   :func:`build_pair` sets for training comparisons), its losses use smooth L1 with beta 1/9 in both heads
   (ours: ``smooth_l1_beta`` of each head), it has no lower background IoU bound (``bg_iou_thresh_lo``,
   0 by default) and it predicts (unused) background deltas.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor as TVFastRCNNPredictor
from torchvision.models.detection.rpn import RPNHead as TVRPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from rcnn.config_schema import ModelConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.generalized_rcnn import GeneralizedRCNN
from rcnn.modeling import AnchorGenerator, RegionProposalNetwork, RoIHeads
from rcnn.ops import RoIAlign, RoIPool


class TrunkAdapter(nn.Module):
    """Our trunk as a torchvision detection backbone: ``(N, 3, H, W) -> {"0": (N, C, H/s, W/s)}`` with an
    ``out_channels`` attribute. The trunk module is shared, not copied."""

    def __init__(self, body: nn.Module, in_feature: str, out_channels: int):
        super().__init__()
        self.body = body
        self.in_feature = in_feature
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return OrderedDict([("0", self.body(x)[self.in_feature])])


class SingleLevelPooler(nn.Module):
    """torchvision's op of the same settings as our RoI pooler (``rcnn.ops.RoIAlign`` / ``RoIPool``), in
    torchvision's pooler interface: ``(features {"0": (N, C, H, W)}, proposals N x (P_i, 4),
    image_shapes) -> (R, C, S, S)``."""

    def __init__(self, pooler: nn.Module):
        super().__init__()
        if isinstance(pooler, RoIAlign):
            self.pooler = torchvision.ops.RoIAlign(
                pooler.output_size, pooler.spatial_scale, pooler.sampling_ratio, pooler.aligned
            )
        elif isinstance(pooler, RoIPool):
            self.pooler = torchvision.ops.RoIPool(pooler.output_size, pooler.spatial_scale)
        else:
            raise TypeError(f"expected rcnn.ops.RoIAlign or RoIPool, got {type(pooler).__name__}")

    def forward(self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes) -> Tensor:
        return self.pooler(features["0"], proposals)


class SameAnchors(TVAnchorGenerator):
    """torchvision's anchor generator with our grid of anchors (exact, size-major, centred on the cells)."""

    def __init__(self, ours: AnchorGenerator):
        super().__init__(sizes=(ours.sizes,), aspect_ratios=(ours.aspect_ratios,))
        self.ours = ours

    def grid_anchors(self, grid_sizes: list[list[int]], strides: list[list[Tensor]]) -> list[Tensor]:
        anchors = []
        for (height, width), (stride_h, stride_w) in zip(grid_sizes, strides):
            if int(stride_h) != self.ours.stride or int(stride_w) != self.ours.stride:
                raise ValueError(
                    f"feature map {height}x{width} has stride {int(stride_h)}x{int(stride_w)} in the padded "
                    f"batch, the anchors assume {self.ours.stride}"
                )
            anchors.append(self.ours.grid_anchors(int(height), int(width), stride_h.device))
        return anchors


class NoResizeTransform(GeneralizedRCNNTransform):
    """torchvision's transform (normalise, pad to ``size_divisible``) without the resizing: as ours, the
    model sees the images at the size they are given."""

    def resize(self, image: Tensor, target: dict[str, Tensor] | None = None):
        return image, target


def copy_rpn_head(rpn: RegionProposalNetwork, in_channels: int, num_anchors: int) -> TVRPNHead:
    ours = rpn.head
    if ours.conv.out_channels != in_channels:
        raise ValueError(
            f"torchvision's RPNHead keeps {in_channels} channels in its 3x3 conv; ours has "
            f"{ours.conv.out_channels}"
        )
    head = TVRPNHead(in_channels, num_anchors).to(ours.conv.weight.device)
    with torch.no_grad():
        conv = head.conv[0][0]
        conv.weight.copy_(ours.conv.weight)
        conv.bias.copy_(ours.conv.bias)
        head.cls_logits.weight.copy_(ours.cls_logits.weight)
        head.cls_logits.bias.copy_(ours.cls_logits.bias)
        head.bbox_pred.weight.copy_(ours.bbox_pred.weight)
        head.bbox_pred.bias.copy_(ours.bbox_pred.bias)
    return head


def copy_predictor(roi_heads: RoIHeads) -> TVFastRCNNPredictor:
    ours = roi_heads.predictor
    k = ours.num_classes
    in_channels = ours.cls_score.in_features
    predictor = TVFastRCNNPredictor(in_channels, k + 1).to(ours.cls_score.weight.device)
    with torch.no_grad():
        predictor.cls_score.weight.copy_(ours.cls_score.weight)
        predictor.cls_score.bias.copy_(ours.cls_score.bias)
        rows = ours.bbox_pred.out_features  # 4K (no background deltas) or 4(K+1)
        predictor.bbox_pred.weight.zero_()
        predictor.bbox_pred.bias.zero_()
        predictor.bbox_pred.weight[-rows:].copy_(ours.bbox_pred.weight)
        predictor.bbox_pred.bias[-rows:].copy_(ours.bbox_pred.bias)
    return predictor


def same_settings(rpn: RegionProposalNetwork, heads: RoIHeads) -> dict:
    """``FasterRCNN`` keyword arguments that give torchvision's RPN and RoI heads our top-n, thresholds,
    sampler sizes and box coder weights, and our predictor's weights (:func:`copy_predictor`)."""
    return {
        "rpn_pre_nms_top_n_train": rpn.pre_nms_top_n["train"],
        "rpn_pre_nms_top_n_test": rpn.pre_nms_top_n["test"],
        "rpn_post_nms_top_n_train": rpn.post_nms_top_n["train"],
        "rpn_post_nms_top_n_test": rpn.post_nms_top_n["test"],
        "rpn_nms_thresh": rpn.nms_thresh,
        "rpn_fg_iou_thresh": rpn.matcher.high_threshold,
        "rpn_bg_iou_thresh": rpn.matcher.low_threshold,
        "rpn_batch_size_per_image": rpn.sampler.batch_size_per_image,
        "rpn_positive_fraction": rpn.sampler.positive_fraction,
        "box_predictor": copy_predictor(heads),
        "box_score_thresh": heads.score_thresh,
        "box_nms_thresh": heads.nms_thresh,
        "box_detections_per_img": heads.detections_per_img,
        "box_fg_iou_thresh": heads.matcher.high_threshold,
        "box_bg_iou_thresh": heads.matcher.low_threshold,
        "box_batch_size_per_image": heads.sampler.batch_size_per_image,
        "box_positive_fraction": heads.sampler.positive_fraction,
        "bbox_reg_weights": heads.box_coder.weights,
    }


def torchvision_faster_rcnn(model: GeneralizedRCNN) -> FasterRCNN:
    """A ``torchvision.models.detection.FasterRCNN`` computing the same detections as ``model`` (see the
    module docstring for what is shared, copied and configured, and the differences that remain).

    Later changes to the RPN head or predictor of ``model`` are not seen by the copy; the trunk and the
    region head are the same modules. Raises ValueError for what torchvision's model cannot express
    (no RPN, Soft-NMS, an RPN head conv of another width).
    """
    rpn, heads = model.proposal_generator, model.roi_heads
    if not isinstance(rpn, RegionProposalNetwork):
        raise ValueError("torchvision's FasterRCNN needs an RPN; this model is Fast R-CNN (no RPN)")
    if not isinstance(heads, RoIHeads):
        raise ValueError(f"expected rcnn.modeling.RoIHeads, got {type(heads).__name__}")
    if heads.soft_nms != "none":
        raise ValueError(f"torchvision's RoIHeads has no Soft-NMS (roi_heads.soft_nms={heads.soft_nms!r})")
    channels = model.backbone.output_shape()[model.in_feature].channels
    anchors = SameAnchors(rpn.anchor_generator)
    mean = model.pixel_mean.flatten().tolist()
    std = model.pixel_std.flatten().tolist()
    tv = FasterRCNN(
        TrunkAdapter(model.backbone, model.in_feature, channels),
        num_classes=None,
        image_mean=mean,
        image_std=std,
        rpn_anchor_generator=anchors,
        rpn_head=copy_rpn_head(rpn, channels, anchors.num_anchors_per_location()[0]),
        box_head=heads.box_head,
        **same_settings(rpn, heads),
    )
    tv.transform = NoResizeTransform(1, 1, mean, std, size_divisible=model.size_divisibility)
    tv.rpn.min_size = rpn.min_size  # torchvision's constructor fixes it at 1e-3
    tv.rpn.box_coder.bbox_xform_clip = rpn.box_coder.clamp
    tv.roi_heads.box_coder.bbox_xform_clip = heads.box_coder.clamp
    # the constructor accepts a MultiScaleRoIAlign only: our pooler goes in afterwards
    tv.roi_heads.box_roi_pool = SingleLevelPooler(heads.pooler)
    return tv.train(model.training)


def build_pair(
    cfg: ModelConfig, num_classes: int, *, seed: int = 0, training: bool = False
) -> tuple[GeneralizedRCNN, FasterRCNN]:
    """Our Faster R-CNN of ``cfg`` (random weights drawn from ``seed``) and its torchvision twin.

    ``training=True`` puts both in training mode and makes our RPN keep cross-boundary anchors as
    torchvision's does, so that both label the same anchors.
    """

    if cfg.type != "faster_rcnn":
        raise ValueError(f"model.type must be 'faster_rcnn' for the torchvision pair, got {cfg.type!r}")
    torch.manual_seed(seed)
    ours = build_detector(cfg, num_classes)
    if training:
        ours.proposal_generator.ignore_cross_boundary = False
    ours.train(training)
    return ours, torchvision_faster_rcnn(ours)
