"""A tiny backbone and synthetic images for fast detector tests (no downloads, CPU, seconds)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from backbones.base import Backbone, BoxHead
from rcnn.config_schema import ModelConfig
from rcnn.detectors.build import build_fpn_rpn, build_roi_heads, build_rpn
from rcnn.detectors.generalized_rcnn import GeneralizedRCNN
from rcnn.modeling import (
    FPN,
    BalancedPositiveNegativeSampler,
    BoxCoder,
    FastRCNNPredictor,
    Matcher,
    MultiScaleRoIAlign,
    RoIHeads,
    TwoMLPHead,
)

COLOURS = {1: (220.0, 40.0, 40.0), 2: (40.0, 200.0, 60.0)}


def tiny_backbone(channels: int = 32) -> Backbone:
    """Three stride-2 conv stages (stride 8, ``channels`` channels) and a 4x4 -> 64 fc region head."""

    def stage(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU())

    stages = [("stem", stage(3, 16), 2), ("s4", stage(16, channels), 4), ("s8", stage(channels, channels), 8)]
    head = BoxHead(nn.Sequential(nn.Flatten(), nn.Linear(channels * 16, 64), nn.ReLU()), 64, 4)
    return Backbone(stages, {"s8": channels}, head)


def tiny_config() -> ModelConfig:
    """Defaults of the schema with anchors and proposal counts scaled down to ~64 px images."""
    cfg = ModelConfig()
    cfg.rpn.anchor_sizes = [16.0, 32.0]
    cfg.rpn.min_size = 2.0
    cfg.rpn.pre_nms_top_n_train, cfg.rpn.post_nms_top_n_train = 600, 100
    cfg.rpn.pre_nms_top_n_test, cfg.rpn.post_nms_top_n_test = 300, 50
    cfg.roi_heads.batch_size_per_image = 64
    return cfg


def tiny_detector(
    num_classes: int = 2, *, rpn: bool = True, cfg: ModelConfig | None = None
) -> GeneralizedRCNN:
    cfg = cfg or tiny_config()
    backbone = tiny_backbone()
    return GeneralizedRCNN(
        backbone,
        build_roi_heads(cfg, backbone.make_box_head(), 8, num_classes),
        proposal_generator=build_rpn(cfg, 32, 8) if rpn else None,
        pixel_mean=cfg.pixel_mean,
        pixel_std=cfg.pixel_std,
    )


def tiny_fpn_config() -> ModelConfig:
    """:func:`tiny_config` with one anchor size per level of :func:`tiny_fpn_detector`'s pyramid."""
    cfg = tiny_config()
    cfg.rpn.anchor_sizes = [16.0, 32.0, 64.0, 128.0]
    cfg.rpn.pre_nms_top_n_test, cfg.rpn.post_nms_top_n_test = 200, 60  # per level, per image
    return cfg


def tiny_fpn_detector(
    num_classes: int = 2, *, rpn: bool = True, cfg: ModelConfig | None = None
) -> GeneralizedRCNN:
    """An FPN detector on a four-stage trunk (C2-C4 at strides 4, 8, 16, 8 channels): a 16-channel
    pyramid P2-P4 (+ P5 by max-pooling for the RPN), a multi-level RPN, RoIAlign from the level of
    Lin et al.'s eq. 1 and a two-fc head of 32 (the layout of :func:`build_fpn_detector`, small)."""
    cfg = cfg or tiny_fpn_config()

    def stage(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.ReLU())

    stages = [
        ("stem", stage(3, 8), 2),
        ("c2", stage(8, 8), 4),
        ("c3", stage(8, 8), 8),
        ("c4", stage(8, 8), 16),
    ]
    trunk = Backbone(stages, {"c2": 8, "c3": 8, "c4": 8}, None, out_features=["c2", "c3", "c4"])
    fpn = FPN(trunk, 16, top_pool=rpn)
    shapes = fpn.output_shape()
    levels = sorted(shapes, key=lambda name: shapes[name].stride)
    h = cfg.roi_heads
    pooler = MultiScaleRoIAlign(fpn.in_features, [shapes[n].stride for n in fpn.in_features], 4)
    box_head = TwoMLPHead(16, 4, 32)
    roi_heads = RoIHeads(
        pooler,
        box_head,
        FastRCNNPredictor(32, num_classes),
        BoxCoder(h.bbox_reg_weights),
        Matcher(h.fg_iou_thresh, h.bg_iou_thresh_hi),
        BalancedPositiveNegativeSampler(h.batch_size_per_image, h.positive_fraction),
        score_thresh=h.score_thresh,
        nms_thresh=h.nms_thresh,
        detections_per_img=h.detections_per_img,
    )
    return GeneralizedRCNN(
        fpn,
        roi_heads,
        proposal_generator=build_fpn_rpn(cfg, levels, [shapes[n].stride for n in levels], 16)
        if rpn
        else None,
        pixel_mean=cfg.pixel_mean,
        pixel_std=cfg.pixel_std,
        size_divisibility=fpn.trunk_stride,
    )


def draw(height: int, width: int, objects: list[tuple[tuple[int, int, int, int], int]]):
    """A grey (3, height, width) image with rectangles ``((x1, y1, x2, y2), label)``, and its target."""
    image = torch.full((3, height, width), 90.0)
    for (x1, y1, x2, y2), label in objects:
        image[:, y1:y2, x1:x2] = torch.tensor(COLOURS[label])[:, None, None]
    boxes = torch.tensor([box for box, _ in objects], dtype=torch.float32).reshape(-1, 4)
    labels = torch.tensor([label for _, label in objects], dtype=torch.int64)
    return image, {"boxes": boxes, "labels": labels}


@pytest.fixture
def two_images():
    """Two images of different sizes: two objects of different classes, and one object."""
    a = draw(64, 80, [((10, 12, 34, 40), 1), ((44, 20, 72, 46), 2)])
    b = draw(72, 56, [((16, 18, 46, 38), 2)])
    return [a[0], b[0]], [a[1], b[1]]


@pytest.fixture(scope="session")
def make_detector():
    """``make_detector(num_classes=2, rpn=True, cfg=None)``: a freshly initialised tiny detector."""
    return tiny_detector


@pytest.fixture(scope="session")
def make_fpn_detector():
    """``make_fpn_detector(num_classes=2, rpn=True, cfg=None)``: a freshly initialised tiny FPN detector."""
    return tiny_fpn_detector


@pytest.fixture(scope="session")
def make_fpn_config():
    """``make_fpn_config()``: a fresh :func:`tiny_fpn_config`."""
    return tiny_fpn_config


@pytest.fixture(scope="session")
def make_config():
    """``make_config()``: a fresh :func:`tiny_config`."""
    return tiny_config


@pytest.fixture(scope="session")
def draw_image():
    """``draw_image(height, width, [((x1, y1, x2, y2), label), ...]) -> (image, target)``."""
    return draw
