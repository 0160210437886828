"""CIFAR ResNets (option A shortcuts) and plain networks: layout, shortcuts, strides and the detection cut."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from backbones import build_backbone, build_classifier
from backbones.cifar_resnet import CLASSIFIERS, CifarBlock, CifarResNet, PadShortcut, cut_for_detection


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_6n_plus_2_weighted_layers_and_output_shape(depth):
    for kind in ("resnet", "plain"):
        model = build_classifier(f"{kind}{depth}", num_classes=10)
        weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        assert len(weighted) == depth
        assert len(list(model.modules())) > 0 and isinstance(model, CifarResNet)
    assert sorted(CLASSIFIERS) == sorted(
        f"{k}{d}" for k in ("plain", "resnet") for d in (20, 32, 44, 56, 110)
    )


def test_forward_at_32x32_and_stage_shapes():
    model = build_classifier("resnet20", num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        s = model.relu(model.bn1(model.conv1(x)))
        s1 = model.layer1(s)
        s2 = model.layer2(s1)
        s3 = model.layer3(s2)
        assert [t.shape[1:] for t in (s1, s2, s3)] == [(16, 32, 32), (32, 16, 16), (64, 8, 8)]
        assert model(x).shape == (2, 10)


def test_option_a_shortcut_is_parameter_free_subsample_and_zero_pad():
    resnet, plain = build_classifier("resnet20"), build_classifier("plain20")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(resnet) == count(plain)
    pad = resnet.layer2[0].shortcut
    assert isinstance(pad, PadShortcut) and not list(pad.parameters())
    x = torch.randn(1, 16, 32, 32)
    y = pad(x)
    assert y.shape == (1, 32, 16, 16)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2]) and torch.all(y[:, 16:] == 0)
    assert isinstance(resnet.layer1[1].shortcut, nn.Identity)
    assert all(b.shortcut is None for b in plain.modules() if isinstance(b, CifarBlock))


def test_option_b_projects_only_where_the_shape_changes():
    model = build_classifier("resnet20", num_classes=10, shortcut="B")
    projections = [
        b for b in model.modules() if isinstance(b, CifarBlock) and isinstance(b.shortcut, nn.Sequential)
    ]
    assert len(projections) == 2
    extra = sum(p.numel() for b in projections for p in b.shortcut.parameters())
    assert extra == 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64  # 1x1 convolutions + BN affine
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(ValueError):
        build_classifier("plain20", shortcut="A")
    with pytest.raises(ValueError):
        CifarResNet(21)


def test_residual_block_adds_the_identity():
    block = CifarBlock(8, 8).eval()
    nn.init.zeros_(block.bn2.weight)  # residual branch -> bn2 bias (0)
    x = torch.relu(torch.randn(1, 8, 5, 5))
    assert torch.equal(block(x), x)
    plain = CifarBlock(8, 8, shortcut="none").eval()
    nn.init.zeros_(plain.bn2.weight)
    assert torch.all(plain(x) == 0)


def test_plain_and_residual_nets_train():
    for name in ("resnet20", "plain20"):
        torch.manual_seed(0)
        model = build_classifier(name, num_classes=4, width=8)
        opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
        x, y = torch.randn(4, 3, 16, 16), torch.arange(4)
        losses = []
        for _ in range(8):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert losses[-1] < losses[0]


@pytest.mark.parametrize("width", [16, 8])
def test_detection_cut_strides(width):
    model = build_classifier("resnet32", num_classes=10, width=width).eval()
    backbone = cut_for_detection(model).eval()
    assert backbone.output_shape() == {"s2": backbone.output_shape()["s2"]}
    spec = backbone.output_shape()["s2"]
    assert (spec.channels, spec.stride) == (2 * width, 2)
    head = backbone.make_box_head()
    assert (head.resolution, head.out_channels) == (8, 4 * width)
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        feats = backbone(x)["s2"]
        assert feats.shape == (1, 2 * width, 32 // spec.stride, 48 // spec.stride)  # measured stride
        assert head(torch.randn(3, 2 * width, 8, 8)).shape == (3, 4 * width)
        torch.testing.assert_close(model.fc(head(feats)), model(x))


def test_build_backbone():
    backbone = build_backbone("plain20", freeze_at=1, num_classes=10)
    assert backbone.stage_names == ["stem", "layer1", "layer2"]
    assert all(not p.requires_grad for p in backbone.stages["stem"].parameters())
    assert all(p.requires_grad for p in backbone.stages["layer1"].parameters())
    with pytest.raises(TypeError):
        cut_for_detection(nn.Identity())


def test_zero_init_residual_starts_every_block_as_its_shortcut():
    model = build_classifier("resnet20", num_classes=10, width=4, zero_init_residual=True).eval()
    blocks = [b for b in model.modules() if isinstance(b, CifarBlock)]
    assert len(blocks) == 9 and all(torch.all(b.bn2.weight == 0) for b in blocks)
    assert all(torch.all(b.bn1.weight == 1) for b in blocks)  # only the branch's last BN
    x = torch.relu(torch.randn(2, 4, 8, 8))
    assert torch.equal(blocks[0](x), x)
    default = build_classifier("resnet20", num_classes=10, width=4)
    assert all(torch.all(b.bn2.weight == 1) for b in default.modules() if isinstance(b, CifarBlock))
    with pytest.raises(ValueError, match="plain"):
        build_classifier("plain20", zero_init_residual=True)
