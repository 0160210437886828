"""The R-CNN detector at test time: the eval contract of the other detectors, pool5 as the network's own
pool5, SVM scoring, class-specific box regression, per-class NMS, the saved state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rcnn.config_schema import ModelConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.rcnn2014.model import RCNN


def lenet_rcnn(num_classes: int = 3, **rcnn_options) -> RCNN:
    cfg = ModelConfig(type="rcnn")
    cfg.backbone.name = "lenet5"
    cfg.rcnn.input_size, cfg.rcnn.context_padding = 32, 2
    for key, value in rcnn_options.items():
        setattr(cfg.rcnn, key, value)
    torch.manual_seed(0)
    return build_detector(cfg, num_classes).eval()


def test_built_from_the_config_and_sized_from_the_backbone():
    model = lenet_rcnn(feature="fc7")
    assert isinstance(model, RCNN) and model.needs_proposals
    assert model.pool_size == 5 and model.pool5_dim == 16 * 5 * 5 and model.feature_dim == 84
    assert model.heads.svm_weight.shape == (3, 84) and model.heads.bbox_beta.shape == (3, 401, 4)
    assert model.cls_score.out_features == 4  # K + 1 for fine-tuning
    assert lenet_rcnn(feature="pool5").heads.svm_weight.shape == (3, 400)
    with pytest.raises(ValueError, match="feature"):
        lenet_rcnn(feature="fc6")


def test_alexnet_pool5_is_the_networks_own_pool5():
    cfg = ModelConfig(type="rcnn")
    cfg.backbone.name = "alexnet"
    cfg.rcnn.input_size = 227
    model = build_detector(cfg, 2).eval()
    crops = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        conv5 = model.backbone(crops)["s16"]
        assert conv5.shape[-2:] == (13, 13)
        assert torch.equal(model.pool5(crops), nn.MaxPool2d(3, 2)(conv5))  # 13 -> 6, the paper's pool5
        assert model.svm_features(model.pool5(crops)).shape == (2, 4096)  # fc7


def test_empty_proposals_give_empty_detections():
    model = lenet_rcnn()
    images = [torch.rand(3, 40, 50) * 255, torch.rand(3, 30, 30) * 255]
    proposals = [torch.zeros(0, 4), torch.tensor([[2.0, 2.0, 20.0, 20.0]])]
    dets = model(images, proposals=proposals)
    assert len(dets) == 2
    assert dets[0]["boxes"].shape == (0, 4) and dets[0]["labels"].dtype == torch.int64
    assert dets[0]["scores"].shape == (0,)
    assert set(dets[1]) == {"boxes", "labels", "scores"}
    # proposals may also come in the targets, as for Fast R-CNN
    dets = model(images, [{"proposals": p} for p in proposals])
    assert dets[0]["boxes"].shape == (0, 4)


def test_misuse_is_explained():
    model = lenet_rcnn()
    image = torch.rand(3, 30, 30) * 255
    with pytest.raises(ValueError, match="proposals"):
        model([image])
    with pytest.raises(ValueError, match=r"proposals\[0\]"):
        model([image], proposals=[torch.tensor([[5.0, 5.0, 1.0, 9.0]])])
    with pytest.raises(RuntimeError, match="stages"):
        model.train()([image], proposals=[torch.zeros(0, 4)])


def set_heads(model: RCNN) -> None:
    """Class 2 scores 0.5 everywhere, classes 1 and 3 -5 (below -1, dropped); class 2 regresses every
    box by dx = 0.25 (a quarter of its width to the right) and dw = log 2 (twice as wide)."""
    heads = model.heads
    heads.svm_bias.copy_(torch.tensor([-5.0, 0.5, -5.0]))
    heads.bbox_mu[1] = torch.tensor([0.25, 0.0, math.log(2.0), 0.0])
    heads.bbox_trained[1] = 1.0


def test_svm_scores_class_regression_nms_and_cap():
    model = lenet_rcnn(detections_per_img=3)
    set_heads(model)
    image = torch.rand(3, 60, 80) * 255
    proposals = torch.tensor(
        [
            [10.0, 10.0, 20.0, 30.0],
            [11.0, 10.0, 21.0, 30.0],  # overlaps the first one (IoU > 0.3): suppressed
            [40.0, 10.0, 50.0, 30.0],
            [40.0, 40.0, 50.0, 50.0],
            [60.0, 40.0, 76.0, 50.0],  # regressed past the image's right edge: clipped at 80
        ]
    )
    (det,) = model([image], proposals=[proposals])
    assert det["labels"].tolist() == [2, 2, 2]  # capped at 3 detections
    assert torch.allclose(det["scores"], torch.full((3,), 0.5))
    # (10, 10, 20, 30): centre 15 + 0.25 * 10 = 17.5, width 20 -> (7.5, 10, 27.5, 30)
    expected = {
        (7.5, 10.0, 27.5, 30.0),
        (37.5, 10.0, 57.5, 30.0),
        (37.5, 40.0, 57.5, 50.0),
        (56.0, 40.0, 80.0, 50.0),
    }
    got = {tuple(round(v, 3) for v in box) for box in det["boxes"].tolist()}
    assert got <= expected and (7.5, 10.0, 27.5, 30.0) in got
    # with batches of 2 crops the result is the same
    model.batch_size = 2
    (again,) = model([image], proposals=[proposals])
    assert torch.equal(again["labels"], det["labels"]) and torch.allclose(again["boxes"], det["boxes"])


def test_state_dict_holds_the_svms_and_regressors():
    model = lenet_rcnn()
    set_heads(model)
    model.heads.svm_weight.normal_()
    model.heads.feature_scale.fill_(0.3)
    fresh = lenet_rcnn()
    torch.manual_seed(1)
    fresh.backbone.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    fresh.load_state_dict(model.state_dict(), strict=True)
    image = torch.rand(3, 40, 40) * 255
    proposals = [torch.tensor([[2.0, 2.0, 30.0, 30.0], [10.0, 5.0, 38.0, 20.0]])]
    a, b = model([image], proposals=proposals)[0], fresh([image], proposals=proposals)[0]
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])


def test_checkpoints_with_the_old_roi_heads_keys_still_load():
    model = lenet_rcnn()
    set_heads(model)
    old = {k.replace("heads.", "roi_heads.", 1) if k.startswith("heads.") else k: v
           for k, v in model.state_dict().items()}  # fmt: skip
    assert any(k.startswith("roi_heads.") for k in old) and not any(k.startswith("heads.") for k in old)
    fresh = lenet_rcnn()
    fresh.load_state_dict(old, strict=True)
    assert torch.equal(fresh.heads.svm_bias, model.heads.svm_bias)
    assert torch.equal(fresh.heads.bbox_trained, model.heads.bbox_trained)
