"""torchvision's ``FasterRCNN`` composed from torchvision's own parts around a copy of rcnn's trunk and
Feature Pyramid Network, starting from the same weights: the accuracy section's comparison model.

Shape shorthand:
    N: images; H, W: padded batch size; D: pyramid channels; L: pyramid levels the RPN reads (P3-P6 in
    ``configs/faster_rcnn/synthetic_resnet18_fpn.yaml``); A: anchors per position; K: foreground classes.

:func:`torchvision_fpn_faster_rcnn` takes an rcnn FPN Faster R-CNN
(:func:`rcnn.detectors.build.build_detector` with ``model.neck: fpn``) and returns a
``torchvision.models.detection.FasterRCNN`` made of

* a **deep copy** of rcnn's trunk + FPN (``model.backbone``: the same weights, frozen layers and frozen
  batch norm), wrapped as torchvision's detection backbone (:class:`PyramidBackbone`: an ``OrderedDict`` of
  the levels, finest first, and ``out_channels``);
* torchvision's ``AnchorGenerator`` with rcnn's anchor size per level and aspect ratios;
* torchvision's ``RPNHead`` with the weights of rcnn's RPN head (3x3 conv, objectness, deltas), and
  torchvision's ``RegionProposalNetwork`` with rcnn's top-n (per level before NMS, per image after), NMS
  threshold, minimum box size, matcher thresholds, sampler sizes and box-coder clamp;
* ``torchvision.ops.MultiScaleRoIAlign`` on the levels rcnn's pooler reads (P3-P5), of its output size,
  sampling ratio and canonical level / size;
* torchvision's ``TwoMLPHead`` and ``FastRCNNPredictor`` with the weights of rcnn's two-fc box head and
  predictor (torchvision also predicts background deltas, which it never uses: those rows start at zero);
* torchvision's ``RoIHeads`` with rcnn's matcher thresholds, sampler sizes, box-coder weights and clamp,
  score threshold, NMS threshold and detections per image;
* torchvision's ``GeneralizedRCNNTransform`` normalising with rcnn's pixel mean / std and padding to the
  same multiple, its resizing replaced by the identity
  (:class:`tools.benchmarks.torchvision_pair.NoResizeTransform`): both models see the images the data
  transforms made.

What torchvision's parts cannot take from rcnn's model is listed by :func:`remaining_differences`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from rcnn.detectors.generalized_rcnn import GeneralizedRCNN
from rcnn.modeling import FPN, MultiLevelRPN, RoIHeads
from rcnn.modeling import MultiScaleRoIAlign as RcnnMultiScaleRoIAlign
from tools.benchmarks.torchvision_pair import NoResizeTransform, copy_rpn_head, same_settings

TORCHVISION_SMOOTH_L1_BETA = 1.0 / 9  # fixed in torchvision's RPN and RoI head losses


class PyramidBackbone(nn.Module):
    """rcnn's FPN as a torchvision detection backbone: ``(N, 3, H, W) -> OrderedDict {level name:
    (N, D, H_l, W_l)}``, finest first (P3, P4, P5, P6), with ``out_channels = D``."""

    def __init__(self, fpn: FPN):
        super().__init__()
        self.fpn = fpn
        self.out_channels = fpn.out_channels

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return OrderedDict(self.fpn(x))


def _parts(model: GeneralizedRCNN) -> tuple[FPN, MultiLevelRPN, RoIHeads, RcnnMultiScaleRoIAlign]:
    """The FPN, RPN, RoI heads and pooler of ``model``; ValueError for another design."""
    rpn, heads = model.proposal_generator, model.roi_heads
    if not isinstance(model.backbone, FPN) or not isinstance(rpn, MultiLevelRPN):
        raise ValueError("expected an FPN Faster R-CNN (model.neck: fpn, model.type: faster_rcnn)")
    if not isinstance(heads, RoIHeads) or not isinstance(heads.pooler, RcnnMultiScaleRoIAlign):
        raise ValueError("expected rcnn's RoIHeads with a MultiScaleRoIAlign pooler")
    if heads.soft_nms != "none":
        raise ValueError(f"torchvision's RoIHeads has no Soft-NMS (roi_heads.soft_nms={heads.soft_nms!r})")
    return model.backbone, rpn, heads, heads.pooler


def torchvision_fpn_faster_rcnn(model: GeneralizedRCNN) -> FasterRCNN:
    """torchvision's Faster R-CNN with a copy of ``model``'s trunk + FPN and copies of its head weights
    (see the module docstring), in ``model``'s training mode. ``model`` is left unchanged and shares no
    module or tensor with the result."""
    model = copy.deepcopy(model)
    fpn, rpn, heads, pooler = _parts(model)
    channels = fpn.out_channels
    generators = rpn.anchor_generator.levels
    anchors = AnchorGenerator(
        sizes=tuple(g.sizes for g in generators), aspect_ratios=tuple(g.aspect_ratios for g in generators)
    )
    resolution = pooler.output_size[0]
    box_head = TwoMLPHead(channels * resolution**2, heads.box_head.out_channels)
    box_head.load_state_dict(heads.box_head.state_dict())  # fc6, fc7: the same names and shapes
    mean, std = model.pixel_mean.flatten().tolist(), model.pixel_std.flatten().tolist()
    tv = FasterRCNN(
        PyramidBackbone(fpn),
        num_classes=None,
        image_mean=mean,
        image_std=std,
        rpn_anchor_generator=anchors,
        rpn_head=copy_rpn_head(rpn, channels, anchors.num_anchors_per_location()[0]),
        box_roi_pool=MultiScaleRoIAlign(
            pooler.in_features,
            resolution,
            pooler.poolers[0].sampling_ratio,
            canonical_scale=int(pooler.canonical_size),
            canonical_level=pooler.canonical_level,
        ),
        box_head=box_head,
        **same_settings(rpn, heads),
    )
    tv.transform = NoResizeTransform(1, 1, mean, std, size_divisible=model.size_divisibility)
    tv.rpn.min_size = rpn.min_size  # torchvision's constructor fixes it at 1e-3
    tv.rpn.box_coder.bbox_xform_clip = rpn.box_coder.clamp
    tv.roi_heads.box_coder.bbox_xform_clip = heads.box_coder.clamp
    return tv.train(model.training)


def remaining_differences(model: GeneralizedRCNN) -> list[str]:
    """What the torchvision model of :func:`torchvision_fpn_faster_rcnn` does otherwise than ``model``,
    one markdown sentence each, read from ``model``'s settings."""
    _, rpn, heads, pooler = _parts(model)
    level = rpn.anchor_generator.levels[0]
    out = []
    if level.offset != 0.0 or not level.rounded:
        out.append(
            "Anchors: torchvision's `AnchorGenerator` centres them at `x * stride` with cell anchors rounded "
            f"to whole pixels; rcnn's at `(x + {level.offset:g}) * stride`"
            + (" with exact cell anchors" if not level.rounded else "")
            + " (`model.rpn.anchor_offset`, `model.rpn.round_anchors`): the same sizes, ratios and counts, "
            "shifted by half a stride."
        )
    if pooler.poolers[0].aligned:
        out.append(
            "RoIAlign: torchvision's `MultiScaleRoIAlign` samples with `aligned=False`; rcnn's pooler with "
            "`aligned=True` (`model.roi_heads.aligned`, half-pixel-corrected sampling points)."
        )
    if rpn.ignore_cross_boundary:
        out.append(
            "RPN training: torchvision's keeps anchors that cross the image boundary; rcnn's ignores them "
            "(`model.rpn.ignore_cross_boundary`)."
        )
    for name, beta in (("RPN", rpn.smooth_l1_beta), ("RoI head", heads.smooth_l1_beta)):
        if abs(beta - TORCHVISION_SMOOTH_L1_BETA) > 1e-9:
            out.append(f"{name} box loss: smooth L1 with beta 1/9 in torchvision's, {beta:g} in rcnn's.")
    if heads.bg_iou_thresh_lo > 0:
        out.append(
            "RoI sampling: torchvision's takes background RoIs at any IoU below the threshold; rcnn's only "
            f"from IoU {heads.bg_iou_thresh_lo:g} (`model.roi_heads.bg_iou_thresh_lo`)."
        )
    if not heads.add_gt_as_proposals:
        out.append(
            "RoI sampling: torchvision's adds the ground-truth boxes to the proposals; rcnn's does not."
        )
    out.append(
        "Random draws: both sample anchors and RoIs at random from torch's generator, seeded alike, but "
        "draw differently (rcnn: random ranks from `torch.rand`; torchvision: `torch.randperm`), so the "
        "samples differ."
    )
    return out
