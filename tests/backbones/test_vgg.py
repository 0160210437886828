"""VGG: Table 1 configurations, torchvision state_dict compatibility, the detection cut."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from backbones import build_backbone, build_classifier, load_pretrained
from backbones.vgg import CONFIGS, cut_for_detection

# Parameter counts (1000 classes) of Table 2 of the paper: 133, 133, 138, 144 million.
PARAMS = {"vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240}


@pytest.mark.parametrize("name", list(PARAMS))
def test_table1_depth_and_parameters(name):
    with torch.device("meta"):  # structure only: no memory, no initialisation
        model = build_classifier(name)
        bn = build_classifier(name + "_bn")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == int(name[3:])  # "weight layers" of Table 1
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.stride == (1, 1) for c in convs)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.features) == len(convs)
    assert sum(p.numel() for p in bn.parameters()) == PARAMS[name] + 2 * sum(c.out_channels for c in convs)


def test_configs_match_torchvision():
    from torchvision.models.vgg import cfgs

    assert CONFIGS == cfgs


@pytest.fixture(scope="module")
def tv_checkpoints(tmp_path_factory):
    """torchvision's vgg16 and vgg16_bn (random weights, BN statistics made non-trivial) saved to disk."""
    torch.manual_seed(0)
    out = {}
    for name in ("vgg16", "vgg16_bn"):
        model = getattr(torchvision.models, name)(weights=None)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.1, 0.1)
        path = tmp_path_factory.mktemp("tv") / f"{name}.pth"
        torch.save(model.state_dict(), path)
        out[name] = (model.eval(), path)
    return out


@pytest.mark.parametrize("name", ["vgg16", "vgg16_bn"])
def test_torchvision_state_dict_loads_strictly_and_gives_the_same_outputs(name, tv_checkpoints, fast_init):
    tv_model, path = tv_checkpoints[name]
    ours = load_pretrained(build_classifier(name), path).eval()
    assert list(ours.state_dict()) == list(tv_model.state_dict())
    x = torch.randn(2, 3, 32, 48)
    with torch.no_grad():
        expected, got = tv_model(x), ours(x)
        assert got.shape == (2, 1000)
        assert torch.allclose(got, expected, atol=1e-6, rtol=1e-5)
        # the detection cut reuses the loaded modules: conv5_3 + ReLU (pool5 dropped) and fc6-fc7
        backbone = cut_for_detection(ours).eval()
        feats = backbone(x)["s16"]
        assert feats.shape == (2, 512, 2, 3)
        assert torch.allclose(feats, tv_model.features[:-1](x), atol=1e-6, rtol=1e-5)
        rois = torch.randn(3, 512, 7, 7)
        fc7 = tv_model.classifier[:6](torch.flatten(rois, 1))
        assert torch.allclose(backbone.make_box_head()(rois), fc7, atol=1e-6, rtol=1e-5)


def test_cut_stages_strides_and_freezing():
    with torch.device("meta"):  # shapes only
        backbone = build_backbone("vgg16_bn", freeze_at=2, frozen_bn=True)
    assert backbone.stage_names == ["stem", "conv2", "conv3", "conv4", "conv5"]
    assert backbone.output_shape()["s16"].channels == 512
    convs = [
        [m for m in backbone.stages[n].modules() if isinstance(m, nn.Conv2d)] for n in backbone.stage_names
    ]
    assert [len(c) for c in convs] == [2, 2, 3, 3, 3]
    assert not any(isinstance(m, nn.MaxPool2d) for m in backbone.stages["conv5"].modules())  # pool5 dropped
    frozen = [all(not p.requires_grad for p in backbone.stages[n].parameters()) for n in backbone.stage_names]
    assert frozen == [True, True, False, False, False]  # conv1_x and conv2_x, as in Fast R-CNN
    assert not any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())
    # stride measured: 16 more input pixels give exactly one more feature cell
    a = backbone(torch.zeros(1, 3, 64, 64, device="meta"))["s16"]
    b = backbone(torch.zeros(1, 3, 80, 96, device="meta"))["s16"]
    assert (b.shape[2] - a.shape[2], b.shape[3] - a.shape[3]) == (1, 2)
    assert a.shape[-2:] == (4, 4)


def test_dropout_option_reaches_classifier_and_box_head():
    with torch.device("meta"):
        model = build_classifier("vgg11", dropout=0.25)
        head = build_backbone("vgg11", dropout=0.0).make_box_head()
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.25, 0.25]
    assert head.resolution == 7 and head.out_channels == 4096
    assert [m.p for m in head.modules() if isinstance(m, nn.Dropout)] == [0.0, 0.0]
