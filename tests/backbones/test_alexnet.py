"""AlexNet (Krizhevsky et al. 2012) and torchvision's variant: shapes, parameters, checkpoint, cut."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from backbones import build_backbone, build_classifier, load_pretrained
from backbones.alexnet import cut_for_detection
from backbones.summary import summarize


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_layer_shapes_at_227():
    with torch.device("meta"):
        model = build_classifier("alexnet")
    rows = {r.name: r for r in summarize(model, (3, 227, 227)).rows}
    expected = {
        "features.conv1": (96, 55, 55),
        "features.pool1": (96, 27, 27),
        "features.conv2": (256, 27, 27),
        "features.pool2": (256, 13, 13),
        "features.conv3": (384, 13, 13),
        "features.conv4": (384, 13, 13),
        "features.conv5": (256, 13, 13),
        "features.pool5": (256, 6, 6),
        "classifier.fc6": (4096,),
        "classifier.fc7": (4096,),
        "classifier.fc8": (1000,),
    }
    assert {name: rows[name].output_shape for name in expected} == expected


def test_paper_details_and_parameter_counts():
    with torch.device("meta"):
        model = build_classifier("alexnet")
        merged = build_classifier("alexnet", groups=1)
    f = model.features
    assert (f.conv1.kernel_size, f.conv1.stride, f.conv1.out_channels) == ((11, 11), (4, 4), 96)
    assert _params(f.conv1) == 34_944
    assert [f.conv2.groups, f.conv3.groups, f.conv4.groups, f.conv5.groups] == [2, 1, 2, 2]  # two GPUs
    for norm in (f.norm1, f.norm2):  # Sec. 3.3
        assert (norm.size, norm.alpha, norm.beta, norm.k) == (5, 1e-4, 0.75, 2.0)
    pools = [m for m in f if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(3, 2)] * 3  # overlapping pooling, Sec. 3.4
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.5, 0.5]

    assert _params(model.features) == 2_334_080 and _params(model.classifier) == 58_631_144
    assert _params(model) == 60_965_224  # "60 million parameters"
    assert _params(merged.features) == 3_747_200 and _params(merged) == 62_378_344


def test_options_and_forward(fast_init):
    model = build_classifier("alexnet", num_classes=10, dropout=0.3, lrn=False).eval()
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in model.modules())
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.3, 0.3]
    with torch.no_grad():
        assert model(torch.randn(2, 3, 227, 227)).shape == (2, 10)
        assert model(torch.randn(1, 3, 67, 67)).shape == (1, 10)  # the smallest input that gets through


def test_torchvision_alexnet_state_dict_loads_into_alexnet_tv(tmp_path, fast_init):
    torch.manual_seed(0)
    tv_model = torchvision.models.alexnet(weights=None).eval()
    path = tmp_path / "alexnet.pth"
    torch.save(tv_model.state_dict(), path)

    ours = load_pretrained(build_classifier("alexnet_tv"), path).eval()
    assert list(ours.state_dict()) == list(tv_model.state_dict())
    x = torch.randn(2, 3, 96, 112)
    with torch.no_grad():
        assert torch.allclose(ours(x), tv_model(x), atol=1e-6, rtol=1e-5)
        backbone = cut_for_detection(ours).eval()
        assert torch.allclose(backbone(x)["s16"], tv_model.features[:-1](x), atol=1e-6, rtol=1e-5)
        rois = torch.randn(3, 256, 6, 6)
        fc7 = tv_model.classifier[:-1](torch.flatten(rois, 1))
        assert torch.allclose(backbone.make_box_head()(rois), fc7, atol=1e-6, rtol=1e-5)
    # torchvision's weights do not fit the 2012 layout: named keys, listed with their shapes
    with pytest.raises(
        ValueError, match=r"(?s)features\.conv1\.weight .*features\.0\.weight \(64, 3, 11, 11\)"
    ):
        load_pretrained(build_classifier("alexnet"), path)


@pytest.mark.parametrize("name", ["alexnet", "alexnet_tv"])
def test_cut_for_detection(name):
    with torch.device("meta"):
        model = build_classifier(name)
        backbone = cut_for_detection(model).freeze(2)
        a = backbone(torch.zeros(1, 3, 227, 227))["s16"]
        b = backbone(torch.zeros(1, 3, 227 + 16, 227 + 32))["s16"]
    channels = 256
    assert backbone.output_shape() == {"s16": backbone.output_shape()["s16"]}
    assert (backbone.output_shape()["s16"].channels, backbone.output_shape()["s16"].stride) == (channels, 16)
    assert a.shape[1] == channels and (b.shape[2] - a.shape[2], b.shape[3] - a.shape[3]) == (1, 2)
    assert backbone.stage_names == ["stem", "conv2", "conv3", "conv4", "conv5"]
    assert not any(isinstance(m, nn.MaxPool2d) for m in backbone.stages["conv5"].modules())  # pool5 dropped
    frozen = [all(not p.requires_grad for p in backbone.stages[n].parameters()) for n in backbone.stage_names]
    assert frozen == [True, True, False, False, False]

    head = backbone.make_box_head()
    assert (head.resolution, head.out_channels) == (6, 4096)
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    classifier_linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert linears == classifier_linears[:2]  # the classifier's own fc6 and fc7 (same objects)
    assert head(torch.zeros(3, channels, 6, 6, device="meta")).shape == (3, 4096)


def test_build_backbone_frozen_stem_trains_the_rest(fast_init):
    torch.manual_seed(0)
    backbone = build_backbone("alexnet", freeze_at=1)
    for p in backbone.stages.parameters():
        p.data.normal_(0.0, 0.01)
    x = torch.randn(1, 3, 99, 99)
    backbone(x)["s16"].sum().backward()
    stem = backbone.stages["stem"][0]
    assert stem.weight.grad is None and not stem.weight.requires_grad
    assert backbone.stages["conv2"][0].weight.grad is not None
