"""ZFNet (Zeiler & Fergus 2013): Fig. 3 shapes, the Table 2 widths, the detection cut."""

from __future__ import annotations

import torch
from torch import nn

from backbones import build_backbone, build_classifier
from backbones.summary import summarize
from backbones.zfnet import cut_for_detection


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {r.name: r.output_shape for r in summarize(model, (3, 224, 224)).rows}


def test_figure3_shapes_with_wide_layers_3_to_5():
    with torch.device("meta"):
        model = build_classifier("zfnet")
    shapes = _shapes(model)
    expected = {
        "features.conv1": (96, 110, 110),
        "features.pool1": (96, 55, 55),
        "features.norm1": (96, 55, 55),
        "features.conv2": (256, 26, 26),
        "features.pool2": (256, 13, 13),
        "features.conv3": (512, 13, 13),
        "features.conv4": (1024, 13, 13),
        "features.conv5": (512, 13, 13),
        "features.pool5": (512, 6, 6),
        "classifier.fc6": (4096,),
        "classifier.fc7": (4096,),
        "classifier.fc8": (1000,),
    }
    assert {k: shapes[k] for k in expected} == expected
    f = model.features
    assert (f.conv1.kernel_size, f.conv1.stride) == ((7, 7), (2, 2))  # AlexNet: 11x11/4
    assert (f.conv2.kernel_size, f.conv2.stride, f.conv2.groups) == ((5, 5), (2, 2), 1)
    names = list(dict(f.named_children()))
    assert names.index("pool1") < names.index("norm1")  # pooling, then contrast normalisation
    assert sum(p.numel() for p in f.conv1.parameters()) == 14_208
    assert sum(p.numel() for p in model.parameters()) == 107_627_624


def test_figure3_widths_option():
    with torch.device("meta"):
        model = build_classifier("zfnet", conv345=(384, 384, 256), num_classes=20)
    shapes = _shapes(model)
    assert [shapes[f"features.conv{i}"][0] for i in (3, 4, 5)] == [384, 384, 256]
    assert model.classifier.fc6.in_features == 256 * 6 * 6
    assert shapes["classifier.fc8"] == (20,)


def test_forward_and_small_inputs(fast_init):
    model = build_classifier("zfnet", num_classes=7, lrn=False).eval()
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in model.modules())
    with torch.no_grad():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)


def test_cut_for_detection():
    with torch.device("meta"):
        model = build_classifier("zfnet")
        backbone = cut_for_detection(model).freeze(1)
        a = backbone(torch.zeros(1, 3, 224, 224))["s16"]
        b = backbone(torch.zeros(1, 3, 224 + 32, 224 + 16))["s16"]
        head = backbone.make_box_head()
        rois = head(torch.zeros(5, 512, 6, 6))
    spec = backbone.output_shape()["s16"]
    assert (spec.channels, spec.stride) == (512, 16)
    assert a.shape == (1, 512, 13, 13)
    assert (b.shape[2] - a.shape[2], b.shape[3] - a.shape[3]) == (2, 1)
    assert backbone.stage_names == ["stem", "conv2", "conv3", "conv4", "conv5"]
    assert not any(p.requires_grad for p in backbone.stages["stem"].parameters())
    assert all(p.requires_grad for p in backbone.stages["conv2"].parameters())
    assert (head.resolution, head.out_channels) == (6, 4096) and rois.shape == (5, 4096)
    assert head.layers[1] is model.classifier.fc6 and head.layers[4] is model.classifier.fc7


def test_build_backbone_passes_options(fast_init):
    backbone = build_backbone("zfnet", conv345=(384, 384, 256), dropout=0.1)
    assert backbone.output_shape()["s16"].channels == 256
    assert [m.p for m in backbone.make_box_head().modules() if isinstance(m, nn.Dropout)] == [0.1, 0.1]
