"""summarize_detector(): per-part counts against hand computations and against backbones.summary's table."""

from __future__ import annotations

import pytest
import torch

from backbones import build_classifier, freeze_batchnorm
from backbones.summary import summarize
from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.summary import PARTS, count_macs, summarize_detector


def test_tiny_detector_by_hand(make_detector):
    model = make_detector(num_classes=2)  # trunk: 3 stride-2 3x3 convs (16, 32, 32 ch); head: fc 512 -> 64
    s = summarize_detector(model, (64, 80))
    assert s.padded_size == (64, 80) and s.num_rois == 50  # tiny_config's post_nms_top_n_test
    assert list(s.parts) == list(PARTS)
    trunk = 16 * 32 * 40 * 3 * 9 + 32 * 16 * 20 * 16 * 9 + 32 * 8 * 10 * 32 * 9
    assert s.parts["trunk"].macs == trunk
    assert s.parts["trunk"].activations == 3 * 64 * 80 + 16 * 32 * 40 + 32 * 16 * 20 + 32 * 8 * 10
    a = 6  # anchors per position: 2 sizes x 3 aspect ratios
    assert s.parts["rpn"].macs == 8 * 10 * 32 * (32 * 9 + a + 4 * a)
    assert s.parts["rpn"].activations == 8 * 10 * (32 + a + 4 * a)  # its input is the trunk's
    assert s.parts["region_head"].macs == 50 * (32 * 4 * 4) * 64
    assert s.parts["region_head"].activations == 50 * (32 * 4 * 4 + 64)  # pooled RoIs + fc output
    k = 2
    assert s.parts["predictor"].macs == 50 * 64 * ((k + 1) + 4 * k)  # R x (in x out) per Linear
    assert s.parts["predictor"].params == 64 * (k + 1) + (k + 1) + 64 * 4 * k + 4 * k
    assert s.params == sum(p.numel() for p in model.parameters())
    assert s.macs == sum(p.macs for p in s.parts.values())
    assert s.activations == sum(p.activations for p in s.parts.values())
    assert s.activation_mb == pytest.approx(s.activations * 4 / 2**20)


def test_rois_padding_and_mode(make_detector):
    model = make_detector(num_classes=3).train()
    s = summarize_detector(model, (60, 75), num_rois=10)
    assert model.training  # restored
    assert s.padded_size == (64, 80)  # padded to the stride, as the model's own preprocess does
    assert s.parts["region_head"].macs == 10 * 512 * 64
    assert s.parts["region_head"].input_shape == (10, 32, 4, 4)
    table = s.table()
    assert "padded to 64x80" in table and "10 RoIs" in table and f"{s.macs:,}" in table
    fast = make_detector(num_classes=3, rpn=False)
    with pytest.raises(ValueError, match="num_rois"):
        summarize_detector(fast, (64, 64))
    assert "rpn" not in summarize_detector(fast, (64, 64), num_rois=5).parts


def test_count_macs_is_flop_counter_over_two():
    fc = torch.nn.Linear(7, 5)
    assert count_macs(lambda: fc(torch.zeros(3, 7))) == 3 * 7 * 5


def _config(name: str, *overrides: str):
    return load_config(f"configs/faster_rcnn/{name}.yaml", DetectionConfig, list(overrides))


def test_resnet_c4_equals_the_classifier_table():
    """The trunk is the classifier's stem + layer1-3 at the image size; the region head its layer4 on 14x14
    maps (the classifier's at a 112 px input, stride 8 with layer3 dilated), once per RoI."""
    cfg = _config("synthetic_resnet18")
    with torch.device("meta"):
        model = build_detector(cfg.model, 9)
        classifier = build_classifier(cfg.model.backbone.name, **cfg.model.backbone.options)
        freeze_batchnorm(classifier)  # frozen_bn: true; its weight and bias are buffers, not parameters
    s = summarize_detector(model, (256, 256))
    table = summarize(classifier, (3, 256, 256))
    trunk_prefixes = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3")
    assert s.parts["trunk"].macs == sum(table.by_prefix(p).macs for p in trunk_prefixes)
    assert s.parts["trunk"].params == sum(table.by_prefix(p).params for p in trunk_prefixes)
    small = summarize(classifier, (3, 112, 112))
    assert s.parts["region_head"].macs == s.num_rois * small.by_prefix("layer4").macs
    assert s.parts["region_head"].params == small.by_prefix("layer4").params


def test_vgg16_equals_the_classifier_table():
    """VGG-16 at 224x224: the trunk is features without pool5, the region head fc6 + fc7 per RoI."""
    with torch.device("meta"):
        model = build_detector(_config("vgg16").model, 20)
        classifier = build_classifier("vgg16")
    s = summarize_detector(model, (224, 224), num_rois=300)
    table = summarize(classifier, (3, 224, 224))
    assert s.parts["trunk"].macs == table.by_prefix("features").macs
    assert s.parts["trunk"].params == table.by_prefix("features").params
    fc67 = table.by_prefix("classifier.0").macs + table.by_prefix("classifier.3").macs
    assert s.parts["region_head"].macs == 300 * fc67 == 300 * (25088 * 4096 + 4096 * 4096)
