"""Building a detector from ``cfg.model``: the only code that reads the model config.

Heads are sized from the backbone itself: the RPN's channels and the RoI pooler's spatial scale come from
``backbone.output_shape()``, the region head and its pooling resolution from ``backbone.make_box_head()``.
With ``model.neck: fpn`` the trunk is cut at C2-C5 and wrapped in a :class:`~rcnn.modeling.fpn.FPN`, whose
``output_shape()`` sizes the multi-level RPN, the multi-scale RoIAlign and the two-fc box head.
"""

from __future__ import annotations

from torch import nn

from backbones import WeightsError, build_backbone, fpn_networks
from rcnn.config import ConfigError
from rcnn.config_schema import ModelConfig
from rcnn.modeling import (
    FPN,
    AnchorGenerator,
    BalancedPositiveNegativeSampler,
    BoxCoder,
    FastRCNNPredictor,
    Matcher,
    MultiLevelRPN,
    MultiScaleRoIAlign,
    PyramidAnchorGenerator,
    RegionProposalNetwork,
    RoIHeads,
    RPNHead,
    TwoMLPHead,
)
from rcnn.ops.roi import RoIAlign, RoIPool
from rcnn.utils.io import CheckpointError

from .generalized_rcnn import GeneralizedRCNN
from .rcnn2014.model import RCNN, build_rcnn

DETECTOR_TYPES = ("faster_rcnn", "fast_rcnn", "rcnn")
POOLERS = ("roi_pool", "roi_align")


def _build_trunk(cfg: ModelConfig, *, fpn: bool = False):
    """The backbone of ``cfg.backbone`` (cut at C2-C5 with ``fpn``); a missing or unfitting weights file
    is a user error naming ``model.backbone.weights``."""
    options = {"fpn": True} if fpn else {}
    try:
        return build_backbone(
            cfg.backbone.name,
            weights=cfg.backbone.weights or None,
            freeze_at=cfg.backbone.freeze_at,
            frozen_bn=cfg.backbone.frozen_bn,
            **options,
            **cfg.backbone.options,
        )
    except FileNotFoundError:  # only the weights file is read from disk here
        raise ConfigError(f"model.backbone.weights: file not found: {cfg.backbone.weights}") from None
    except WeightsError as e:  # the message starts with the key (build_backbone's weights_key)
        raise CheckpointError(str(e)) from None


def build_detector(cfg: ModelConfig, num_classes: int) -> GeneralizedRCNN | RCNN:
    """Faster R-CNN (``cfg.type == "faster_rcnn"``), Fast R-CNN (``"fast_rcnn"``) or R-CNN (``"rcnn"``,
    :func:`rcnn.detectors.rcnn2014.model.build_rcnn`) for ``num_classes`` foreground classes, on the backbone
    of ``cfg.backbone`` (built here, once, for every type). Every detector has ``needs_proposals``: True
    when proposals come from the data (Fast R-CNN, R-CNN)."""
    if cfg.type not in DETECTOR_TYPES:
        raise ValueError(f"unknown model.type {cfg.type!r}; build_detector makes one of {DETECTOR_TYPES}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1 (foreground classes), got {num_classes}")
    if cfg.neck == "fpn":
        return build_fpn_detector(cfg, num_classes)
    backbone = _build_trunk(cfg)
    if cfg.type == "rcnn":  # R-CNN (2014): per-crop CNN features and SVMs, its own module
        r = cfg.rcnn
        return build_rcnn(
            backbone,
            num_classes,
            pixel_mean=cfg.pixel_mean,
            pixel_std=cfg.pixel_std,
            input_size=r.input_size,
            context_padding=r.context_padding,
            pool_size=r.pool_size,
            feature=r.feature,
            max_proposals=r.max_proposals,
            batch_size=r.batch_size,
            nms_thresh=r.nms_thresh,
            score_thresh=r.score_thresh,
            detections_per_img=r.detections_per_img,
        )
    shapes = backbone.output_shape()
    feature = shapes[max(shapes, key=lambda name: shapes[name].stride)]  # the coarsest map
    rpn = build_rpn(cfg, feature.channels, feature.stride) if cfg.type == "faster_rcnn" else None
    roi_heads = build_roi_heads(cfg, backbone.make_box_head(), feature.stride, num_classes)
    return GeneralizedRCNN(
        backbone, roi_heads, proposal_generator=rpn, pixel_mean=cfg.pixel_mean, pixel_std=cfg.pixel_std
    )


def build_fpn_detector(cfg: ModelConfig, num_classes: int) -> GeneralizedRCNN:
    """Fast / Faster R-CNN with a Feature Pyramid Network (Lin et al., 2017) on a ResNet-family trunk:
    P2-P5 (+ P6 by max-pooling for the RPN), a multi-level RPN with one anchor size per level, RoIAlign
    from the level of Lin et al.'s eq. 1, and a two-fc box head. The layout of torchvision's
    ``fasterrcnn_resnet50_fpn`` (its weights load through :mod:`rcnn.detectors.torchvision_weights`).
    Raises ConfigError for what this design cannot take."""
    name = cfg.backbone.name
    if cfg.type == "rcnn":
        raise ConfigError("model.neck='fpn' is for model.type 'faster_rcnn' or 'fast_rcnn', not 'rcnn'")
    if name not in fpn_networks():
        raise ConfigError(
            f"model.neck='fpn' needs a ResNet-family backbone (resnet*, se_resnet*); "
            f"model.backbone.name={name!r} is C4-only: use model.neck=none"
        )
    if cfg.roi_heads.pooler != "roi_align":
        raise ConfigError(f"model.roi_heads.pooler={cfg.roi_heads.pooler!r}: the FPN pools with 'roi_align'")
    try:
        trunk = _build_trunk(cfg, fpn=True)
    except ValueError as e:
        if "replace_stride_with_dilation" in str(e):
            raise ConfigError(f"model.backbone.options: {e}") from None
        raise
    faster = cfg.type == "faster_rcnn"
    # P6 only feeds the RPN
    fpn = FPN(trunk, cfg.fpn.out_channels, top_pool=faster, min_stride=2**cfg.fpn.min_level)
    shapes = fpn.output_shape()
    levels = sorted(shapes, key=lambda level: shapes[level].stride)  # finest first
    rpn = build_fpn_rpn(cfg, levels, [shapes[n].stride for n in levels], fpn.out_channels) if faster else None
    h = cfg.roi_heads
    pooled = fpn.in_features  # P2-P5 (P3-P5 with fpn.min_level 3)
    resolution = h.pooler_resolution or 7
    pooler = MultiScaleRoIAlign(
        pooled,
        [shapes[n].stride for n in pooled],
        resolution,
        sampling_ratio=h.sampling_ratio,
        aligned=h.aligned,
    )
    box_head = TwoMLPHead(shapes[pooled[0]].channels, resolution, cfg.fpn.representation_size)
    return GeneralizedRCNN(
        fpn,
        _roi_heads(cfg, pooler, box_head, num_classes),
        proposal_generator=rpn,
        pixel_mean=cfg.pixel_mean,
        pixel_std=cfg.pixel_std,
        size_divisibility=fpn.trunk_stride,
    )


def _rpn_options(cfg: ModelConfig) -> dict:
    r = cfg.rpn
    return {
        "pre_nms_top_n_train": r.pre_nms_top_n_train,
        "pre_nms_top_n_test": r.pre_nms_top_n_test,
        "post_nms_top_n_train": r.post_nms_top_n_train,
        "post_nms_top_n_test": r.post_nms_top_n_test,
        "nms_thresh": r.nms_thresh,
        "min_size": r.min_size,
        "smooth_l1_beta": r.smooth_l1_beta,
        "ignore_cross_boundary": r.ignore_cross_boundary,
    }


def build_fpn_rpn(cfg: ModelConfig, levels: list[str], strides: list[int], channels: int) -> MultiLevelRPN:
    """The multi-level RPN of ``cfg.rpn``: ``rpn.anchor_sizes[l]`` on level ``levels[l]``."""
    r = cfg.rpn
    if len(r.anchor_sizes) != len(levels):
        raise ConfigError(
            f"model.rpn.anchor_sizes: the FPN's RPN takes one anchor size per level ({', '.join(levels)}): "
            f"{len(levels)} sizes, got {len(r.anchor_sizes)} ({r.anchor_sizes})"
        )
    anchors = PyramidAnchorGenerator(
        [[size] for size in r.anchor_sizes], r.aspect_ratios, strides, r.anchor_offset, r.round_anchors
    )
    return MultiLevelRPN(
        levels,
        anchors,
        RPNHead(channels, anchors.num_anchors_per_location),
        BoxCoder((1.0, 1.0, 1.0, 1.0)),
        Matcher(r.fg_iou_thresh, r.bg_iou_thresh, allow_low_quality_matches=True),
        BalancedPositiveNegativeSampler(r.batch_size_per_image, r.positive_fraction),
        **_rpn_options(cfg),
    )


def build_rpn(cfg: ModelConfig, in_channels: int, stride: int) -> RegionProposalNetwork:
    """The RPN of ``cfg.rpn`` on a feature map of ``in_channels`` channels and ``stride``."""
    r = cfg.rpn
    anchors = AnchorGenerator(r.anchor_sizes, r.aspect_ratios, stride, r.anchor_offset, r.round_anchors)
    return RegionProposalNetwork(
        anchors,
        RPNHead(in_channels, anchors.num_anchors_per_location),
        BoxCoder((1.0, 1.0, 1.0, 1.0)),
        Matcher(r.fg_iou_thresh, r.bg_iou_thresh, allow_low_quality_matches=True),
        BalancedPositiveNegativeSampler(r.batch_size_per_image, r.positive_fraction),
        **_rpn_options(cfg),
    )


def build_roi_heads(cfg: ModelConfig, box_head, stride: int, num_classes: int) -> RoIHeads:
    """The Fast R-CNN head of ``cfg.roi_heads`` around the backbone's ``box_head``."""
    h = cfg.roi_heads
    resolution = h.pooler_resolution or box_head.resolution
    if h.pooler == "roi_pool":
        pooler = RoIPool(resolution, 1.0 / stride)
    elif h.pooler == "roi_align":
        pooler = RoIAlign(resolution, 1.0 / stride, sampling_ratio=h.sampling_ratio, aligned=h.aligned)
    else:
        raise ValueError(f"unknown model.roi_heads.pooler {h.pooler!r}; valid: {POOLERS}")
    return _roi_heads(cfg, pooler, box_head, num_classes)


def _roi_heads(cfg: ModelConfig, pooler: nn.Module, box_head: nn.Module, num_classes: int) -> RoIHeads:
    h = cfg.roi_heads
    return RoIHeads(
        pooler,
        box_head,
        FastRCNNPredictor(box_head.out_channels, num_classes),
        BoxCoder(h.bbox_reg_weights),
        Matcher(h.fg_iou_thresh, h.bg_iou_thresh_hi, allow_low_quality_matches=False),
        BalancedPositiveNegativeSampler(h.batch_size_per_image, h.positive_fraction),
        bg_iou_thresh_lo=h.bg_iou_thresh_lo,
        add_gt_as_proposals=h.add_gt_as_proposals,
        smooth_l1_beta=h.smooth_l1_beta,
        score_thresh=h.score_thresh,
        nms_thresh=h.nms_thresh,
        detections_per_img=h.detections_per_img,
        soft_nms=h.soft_nms,
        soft_nms_sigma=h.soft_nms_sigma,
    )
