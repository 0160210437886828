"""Our Faster R-CNN and torchvision's FasterRCNN built around it (tools.benchmarks.torchvision_pair) give the
same detections, box for box, on identical random weights; so does our model after
``optimize_for_inference`` (batch norm folded, channels-last), within float rounding."""

from __future__ import annotations

import copy

import pytest
import torch
from torchvision.models.detection import FasterRCNN
from torchvision.ops import FrozenBatchNorm2d

from rcnn.config_schema import ModelConfig
from tools.benchmarks.torchvision_pair import build_pair, torchvision_faster_rcnn

NUM_CLASSES = 5


def tiny_config(pooler: str) -> ModelConfig:
    """ResNet-18 of width 8 (C4: stride 16 trunk, layer4 head on 14x14 RoIs), anchors for ~128 px images."""
    cfg = ModelConfig()
    cfg.backbone.name, cfg.backbone.options = "resnet18", {"width": 8}
    cfg.backbone.freeze_at, cfg.backbone.frozen_bn = 0, True
    cfg.rpn.anchor_sizes = [16.0, 32.0, 64.0]
    cfg.rpn.min_size = 0.0  # see torchvision_pair, difference 1
    cfg.rpn.pre_nms_top_n_test, cfg.rpn.post_nms_top_n_test = 400, 60
    cfg.roi_heads.pooler = pooler
    return cfg


def randomise(model) -> None:
    """Batch norm statistics away from identity, and a class-score layer wide enough that detections pass
    the score threshold (a freshly initialised head scores every class near 1 / (K + 1))."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.backbone.modules():
            if isinstance(m, FrozenBatchNorm2d):
                c = m.weight.numel()
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
        predictor = model.roi_heads.predictor
        predictor.cls_score.weight.copy_(torch.randn(predictor.cls_score.weight.shape, generator=gen))
        predictor.bbox_pred.weight.copy_(torch.randn(predictor.bbox_pred.weight.shape, generator=gen) * 0.01)
        head = model.proposal_generator.head
        head.bbox_pred.weight.copy_(torch.randn(head.bbox_pred.weight.shape, generator=gen) * 0.01)


def images() -> list[torch.Tensor]:
    """Two images of different sizes (neither a multiple of the stride), RGB 0..255."""
    gen = torch.Generator().manual_seed(2)
    return [torch.rand(3, 120, 150, generator=gen) * 255, torch.rand(3, 97, 131, generator=gen) * 255]


def assert_same_detections(ours: list[dict], theirs: list[dict], atol: float) -> None:
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert len(a["boxes"]) > 0, f"image {i}: no detections, the comparison would be empty"
        assert a["boxes"].shape == b["boxes"].shape, f"image {i}: {len(a['boxes'])} vs {len(b['boxes'])}"
        torch.testing.assert_close(a["boxes"], b["boxes"], atol=atol, rtol=0)
        torch.testing.assert_close(a["scores"], b["scores"], atol=atol, rtol=0)
        assert torch.equal(a["labels"], b["labels"]), f"image {i}: labels differ"


@pytest.fixture(scope="module", params=["roi_align", "roi_pool"])
def pair(request):
    ours, _ = build_pair(tiny_config(request.param), NUM_CLASSES, seed=0)
    randomise(ours)
    return ours.eval(), torchvision_faster_rcnn(ours).eval()


def test_the_twin_is_torchvision_faster_rcnn_sharing_trunk_and_region_head(pair):
    ours, theirs = pair
    assert isinstance(theirs, FasterRCNN)
    assert theirs.backbone.body is ours.backbone
    assert theirs.roi_heads.box_head is ours.roi_heads.box_head
    assert not theirs.training


def test_same_detections_box_for_box(pair):
    ours, theirs = pair
    with torch.inference_mode():
        mine, tv = ours(images()), theirs(images())
    assert_same_detections(mine, tv, atol=1e-4)


def test_same_detections_one_image_at_a_time(pair):
    ours, theirs = pair
    with torch.inference_mode():
        for image in images():
            assert_same_detections(ours([image]), theirs([image]), atol=1e-4)


def test_optimized_for_inference_still_matches_torchvision(pair):
    ours, theirs = pair
    fast = copy.deepcopy(ours).optimize_for_inference()
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in fast.modules())  # folded: a different model
    with torch.inference_mode():
        mine, tv = fast(images()), theirs(images())
    assert_same_detections(mine, tv, atol=1e-3)


def test_training_pair_labels_the_same_anchors_and_trains():
    ours, theirs = build_pair(tiny_config("roi_align"), NUM_CLASSES, seed=0, training=True)
    assert ours.training and theirs.training
    assert ours.proposal_generator.ignore_cross_boundary is False
    targets = [
        {"boxes": torch.tensor([[10.0, 20.0, 70.0, 90.0]]), "labels": torch.tensor([2])},
        {
            "boxes": torch.tensor([[30.0, 5.0, 100.0, 60.0], [5.0, 50.0, 40.0, 95.0]]),
            "labels": torch.tensor([1, 5]),
        },
    ]
    for model in (ours, theirs):
        losses = model(images(), targets)
        assert len(losses) == 4 and all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()


def test_models_torchvision_cannot_express_are_refused():
    cfg = tiny_config("roi_align")
    cfg.roi_heads.soft_nms = "linear"
    with pytest.raises(ValueError, match="Soft-NMS"):
        build_pair(cfg, NUM_CLASSES)
    cfg = tiny_config("roi_align")
    cfg.type = "fast_rcnn"
    with pytest.raises(ValueError, match="faster_rcnn"):
        build_pair(cfg, NUM_CLASSES)
