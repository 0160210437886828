"""The Feature Pyramid Network's parts: the pyramid, the level assignment, the multi-scale RoIAlign
(against torchvision's MultiScaleRoIAlign), the multi-level RPN, the rounded anchors and the box head."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torchvision
from torchvision.models.detection.anchor_utils import AnchorGenerator as TVAnchorGenerator

from backbones import build_backbone
from rcnn.config import ConfigError
from rcnn.config_schema import FPNConfig, ModelConfig
from rcnn.detectors.build import build_detector
from rcnn.modeling import (
    FPN,
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    MultiLevelRPN,
    MultiScaleRoIAlign,
    PyramidAnchorGenerator,
    RPNHead,
    TwoMLPHead,
    assign_fpn_levels,
)
from rcnn.modeling.anchors import cell_anchors


@pytest.fixture(scope="module")
def pyramid() -> FPN:
    torch.manual_seed(0)
    return FPN(build_backbone("resnet18", fpn=True, width=8, frozen_bn=True), 32).eval()


def test_pyramid_levels_match_output_shape(pyramid):
    shapes = pyramid.output_shape()
    assert list(shapes) == ["s4", "s8", "s16", "s32", "s64"]
    assert all(s.channels == 32 for s in shapes.values())
    out = pyramid(torch.randn(2, 3, 64, 96))
    assert list(out) == list(shapes)
    for name, spec in shapes.items():
        assert out[name].shape == (2, 32, -(-64 // spec.stride), -(-96 // spec.stride)), name
    assert pyramid.trunk_stride == 32


def test_pyramid_without_top_pool_and_its_errors():
    trunk = build_backbone("resnet18", fpn=True, width=8)
    assert list(FPN(trunk, 16, top_pool=False).output_shape()) == ["s4", "s8", "s16", "s32"]
    with pytest.raises(ValueError, match="doubling strides"):
        FPN(build_backbone("resnet18", width=8), 16)  # the C4 cut has one level
    with pytest.raises(ValueError, match="replace_stride_with_dilation"):
        build_backbone("resnet18", fpn=True, replace_stride_with_dilation=[False, True, False])
    with pytest.raises(ValueError, match="Feature Pyramid"):
        build_backbone("vgg16", fpn=True)


def test_pyramid_from_p3_and_the_detector_built_on_it():
    trunk = build_backbone("resnet18", fpn=True, width=8)
    p3 = FPN(trunk, 16, min_stride=8)
    assert list(p3.output_shape()) == ["s8", "s16", "s32", "s64"]
    assert p3.in_features == ["s8", "s16", "s32"] and len(p3.inner_blocks) == 3
    out = p3(torch.randn(1, 3, 64, 64))
    assert [tuple(out[k].shape[-2:]) for k in out] == [(8, 8), (4, 4), (2, 2), (1, 1)]

    cfg = ModelConfig(neck="fpn", num_classes=3)
    cfg.backbone.name, cfg.backbone.options = "resnet18", {"width": 8}
    cfg.fpn = FPNConfig(out_channels=16, representation_size=32, min_level=3)
    cfg.rpn.anchor_sizes = [16, 32, 64, 128]  # one per level P3-P6
    cfg.roi_heads.pooler, cfg.roi_heads.pooler_resolution = "roi_align", 7
    model = build_detector(cfg, 4).train()
    assert model.roi_heads.pooler.min_level == 3 and model.roi_heads.pooler.max_level == 5
    targets = [{"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([1])}]
    losses = model([torch.rand(3, 64, 64)], targets)
    assert set(losses) >= {"loss_rpn_cls", "loss_cls", "loss_box"}
    assert all(torch.isfinite(v) for v in losses.values())
    cfg.rpn.anchor_sizes = [16, 32, 64, 128, 256]  # five sizes for four levels: the config key in the error
    with pytest.raises(ConfigError, match="model.rpn.anchor_sizes"):
        build_detector(cfg, 4)


def test_level_assignment_follows_eq_1():
    sides = torch.tensor([10.0, 111.0, 112.0, 224.0, 447.0, 448.0, 2000.0])
    boxes = torch.stack([torch.zeros_like(sides), torch.zeros_like(sides), sides, sides], 1)
    assert assign_fpn_levels(boxes, 2, 5).tolist() == [2, 2, 3, 4, 4, 5, 5]


def _features(gen: torch.Generator, channels: int = 4) -> OrderedDict:
    return OrderedDict(
        (f"s{s}", torch.randn(2, channels, 512 // s, 640 // s, generator=gen)) for s in (4, 8, 16, 32)
    )


def _boxes(gen: torch.Generator) -> list[torch.Tensor]:
    out = []
    for n in (17, 9):
        xy = torch.rand(n, 2, generator=gen) * 150
        wh = torch.rand(n, 2, generator=gen) ** 2 * 480 + 2
        out.append(torch.cat([xy, (xy + wh).clamp(max=511)], 1))
    return out


@pytest.mark.parametrize("grad", [False, True])
def test_multiscale_roi_align_equals_torchvision(grad):
    gen = torch.Generator().manual_seed(0)
    features, boxes = _features(gen), _boxes(gen)
    ours = MultiScaleRoIAlign(list(features), [4, 8, 16, 32], 7, sampling_ratio=2, aligned=False)
    theirs = torchvision.ops.MultiScaleRoIAlign(list(features), 7, sampling_ratio=2)
    levels = assign_fpn_levels(torch.cat(boxes), 2, 5)
    assert len(set(levels.tolist())) >= 3  # the boxes reach several levels
    if grad:
        for f in features.values():
            f.requires_grad_(True)
    mine = ours(features, boxes)
    tv = theirs(features, boxes, [(512, 640), (512, 640)])
    torch.testing.assert_close(mine, tv, atol=1e-5, rtol=1e-5)
    if grad:
        weights = torch.randn(mine.shape, generator=gen)
        maps = list(features.values())
        g1 = torch.autograd.grad((mine * weights).sum(), maps, allow_unused=True)
        g2 = torch.autograd.grad((tv * weights).sum(), maps, allow_unused=True)
        for a, b, f in zip(g1, g2, maps):  # None: a level without RoIs
            a = torch.zeros_like(f) if a is None else a
            b = torch.zeros_like(f) if b is None else b
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_rounded_anchors_are_torchvisions():
    for size in (32.0, 64.0, 128.0, 256.0, 512.0):
        expected = TVAnchorGenerator().generate_anchors([size], [0.5, 1.0, 2.0])
        assert torch.equal(cell_anchors([size], [0.5, 1.0, 2.0], rounded=True), expected)


def _rpn(pre: int = 50, post: int = 20) -> MultiLevelRPN:
    levels = ["s4", "s8", "s16", "s32", "s64"]
    anchors = PyramidAnchorGenerator([[16], [32], [64], [128], [256]], [0.5, 1.0, 2.0], [4, 8, 16, 32, 64])
    return MultiLevelRPN(
        levels,
        anchors,
        RPNHead(32, anchors.num_anchors_per_location),
        BoxCoder(),
        Matcher(0.7, 0.3, allow_low_quality_matches=True),
        BalancedPositiveNegativeSampler(64, 0.5),
        pre_nms_top_n_train=pre,
        pre_nms_top_n_test=pre,
        post_nms_top_n_train=post,
        post_nms_top_n_test=post,
        min_size=0.0,
        ignore_cross_boundary=False,
    )


def test_multilevel_rpn_shapes_and_empty_ground_truth(pyramid):
    torch.manual_seed(0)
    rpn = _rpn().train()
    with torch.no_grad():
        features = pyramid(torch.randn(2, 3, 64, 96))
    sizes = [(64, 96), (50, 70)]
    targets = [
        {"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64)},
        {"boxes": torch.tensor([[5.0, 5.0, 40.0, 45.0]]), "labels": torch.tensor([1])},
    ]
    proposals, losses = rpn(features, sizes, targets)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_box"}
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_rpn_cls"] > 0
    for p, (h, w) in zip(proposals, sizes):
        assert p.shape[1] == 4 and 0 < len(p) <= 20
        assert (p[:, 0::2] <= w).all() and (p[:, 1::2] <= h).all() and (p >= 0).all()
    empty = [{"boxes": torch.zeros((0, 4)), "labels": torch.zeros((0,), dtype=torch.int64)}] * 2
    _, losses = rpn(features, sizes, empty)
    assert losses["loss_rpn_box"] == 0 and losses["loss_rpn_cls"] > 0


def test_multilevel_rpn_takes_top_n_per_level(pyramid):
    rpn = _rpn(pre=3, post=1000).eval()
    with torch.no_grad():
        features = pyramid(torch.randn(1, 3, 64, 96))
        proposals, _ = rpn(features, [(64, 96)])
    assert len(proposals[0]) <= 3 * 5  # at most 3 candidates from each of the 5 levels
    assert len(proposals[0]) > 3  # more than one level contributes


def test_two_mlp_head():
    head = TwoMLPHead(16, 7, 64)
    assert head.out_channels == 64 and head.resolution == 7
    out = head(torch.randn(5, 16, 7, 7))
    assert out.shape == (5, 64) and (out >= 0).all()
    assert head(torch.randn(0, 16, 7, 7)).shape == (0, 64)
