import pytest
import torch

from rcnn.config_schema import ModelConfig
from rcnn.detectors.build import build_detector
from rcnn.ops.roi import RoIAlign, RoIPool


def small_resnet_config(type_: str = "faster_rcnn") -> ModelConfig:
    cfg = ModelConfig(type=type_)
    cfg.backbone.name = "resnet18"
    cfg.backbone.options = {"width": 8}
    cfg.rpn.anchor_sizes = [32.0, 64.0]
    cfg.rpn.pre_nms_top_n_train, cfg.rpn.post_nms_top_n_train = 200, 20
    cfg.rpn.pre_nms_top_n_test, cfg.rpn.post_nms_top_n_test = 100, 10
    cfg.roi_heads.batch_size_per_image = 8
    return cfg


def test_faster_rcnn_is_sized_from_the_backbone():
    torch.manual_seed(0)
    model = build_detector(small_resnet_config(), num_classes=3)
    spec = model.backbone.output_shape()[model.in_feature]
    assert model.in_feature == "s16" and spec.stride == 16 and model.size_divisibility == 16
    assert model.proposal_generator.head.conv.in_channels == spec.channels
    assert model.proposal_generator.head.cls_logits.out_channels == 2 * 3
    pooler = model.roi_heads.pooler
    assert isinstance(pooler, RoIPool) and pooler.spatial_scale == 1 / 16
    assert pooler.output_size == (model.roi_heads.box_head.resolution,) * 2  # 0 in the config: the head's own
    assert model.roi_heads.box_head is model.backbone.make_box_head()
    assert model.roi_heads.predictor.cls_score.out_features == 4
    assert model.roi_heads.predictor.cls_score.in_features == model.roi_heads.box_head.out_channels

    image = torch.rand(3, 64, 80) * 255
    target = {"boxes": torch.tensor([[8.0, 8.0, 50.0, 40.0]]), "labels": torch.tensor([2])}
    losses = model.train()([image], [target])
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box"}
    assert all(torch.isfinite(v) for v in losses.values())
    with torch.no_grad():
        (det,) = model.eval()([image])
    assert det["boxes"].shape[1] == 4


def test_fast_rcnn_has_no_rpn_and_roi_align_option():
    cfg = small_resnet_config("fast_rcnn")
    cfg.roi_heads.pooler = "roi_align"
    cfg.roi_heads.pooler_resolution = 7
    cfg.roi_heads.bg_iou_thresh_lo = 0.1
    model = build_detector(cfg, num_classes=2)
    assert model.proposal_generator is None
    assert isinstance(model.roi_heads.pooler, RoIAlign) and model.roi_heads.pooler.output_size == (7, 7)
    assert model.roi_heads.pooler.sampling_ratio == cfg.roi_heads.sampling_ratio
    assert model.roi_heads.bg_iou_thresh_lo == 0.1


def test_unknown_type_and_pooler_are_named():
    with pytest.raises(ValueError, match="faster_rcnn"):
        build_detector(ModelConfig(type="yolo"), num_classes=2)
    cfg = small_resnet_config()
    cfg.roi_heads.pooler = "psroi"
    with pytest.raises(ValueError, match="roi_align"):
        build_detector(cfg, num_classes=2)
    with pytest.raises(ValueError, match="num_classes"):
        build_detector(small_resnet_config(), num_classes=0)
