"""SE-ResNet: timm checkpoint compatibility, SE placement and the C4 detection cut."""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from backbones import build_backbone, build_classifier, load_pretrained
from backbones.resnet import BasicBlock, Bottleneck
from backbones.se_resnet import CLASSIFIERS, SEModule, cut_for_detection, se_hidden_channels


def _randomise(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics/affine parameters and SE biases, exercised by eval-mode comparisons."""
    g = torch.Generator().manual_seed(seed)
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        elif isinstance(m, nn.Conv2d) and ".se." in f".{name}" and m.bias is not None:
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g))


@pytest.mark.parametrize("name", ["se_resnet18", "se_resnet50"])
def test_timm_checkpoint_loads_strictly_with_identical_logits(name, tmp_path):
    torch.manual_seed(0)
    reference = timm.create_model(name.replace("se_", "se"), pretrained=False).eval()
    _randomise(reference)
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)

    model = build_classifier(name).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    load_pretrained(model, path, strict_classes=True)
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_state_dict_shapes_match_timm(name):
    ours = {k: v.shape for k, v in CLASSIFIERS[name](num_classes=10).state_dict().items()}
    ref = timm.create_model(name.replace("se_", "se"), pretrained=False, num_classes=10).state_dict()
    assert ours == {k: v.shape for k, v in ref.items()}


def test_hidden_width_is_channels_over_reduction():
    assert [se_hidden_channels(c) for c in (64, 128, 256, 512, 1024, 2048)] == [8, 8, 16, 32, 64, 128]
    assert [se_hidden_channels(c, 16, divisor=1) for c in (64, 128, 256)] == [4, 8, 16]  # the paper's C/r
    model = build_classifier("se_resnet18", se_divisor=1)
    assert model.layer1[0].se.fc1.out_channels == 4


def test_every_block_has_se_on_the_residual_branch_before_the_addition():
    model = build_classifier("se_resnet50", width=16)
    blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    assert len(blocks) == 16 and all(isinstance(b.se, SEModule) for b in blocks)
    assert blocks[0].se.fc1.in_channels == blocks[0].bn3.num_features

    # Zeroing the excitation (gate = sigmoid(-inf) = 0) turns a block into relu(shortcut): the SE output
    # is added to the shortcut, and it multiplies the whole residual branch.
    block = model.layer2[1].eval()
    nn.init.zeros_(block.se.fc2.weight)
    nn.init.constant_(block.se.fc2.bias, -1e4)
    x = torch.randn(1, block.conv1.in_channels, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(block(x), torch.relu(x))


def test_se_gates_rescale_channels():
    se = SEModule(32)
    x = torch.rand(2, 32, 5, 5) + 0.1
    y = se(x)
    ratio = y / x  # one gate per (sample, channel), constant over space, in (0, 1)
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-6)
    assert ratio.min() > 0 and ratio.max() < 1


def test_c4_cut():
    backbone = build_backbone("se_resnet50", width=16, freeze_at=1).eval()
    spec = backbone.output_shape()["s16"]
    assert (spec.channels, spec.stride) == (256, 16)
    head = backbone.make_box_head()
    assert (head.resolution, head.out_channels) == (14, 512)
    with torch.no_grad():
        assert backbone(torch.randn(1, 3, 96, 64))["s16"].shape == (1, 256, 6, 4)
        assert head(torch.randn(2, 256, 14, 14)).shape == (2, 512)
    assert all(not p.requires_grad for p in backbone.stages["stem"].parameters())
    with pytest.raises(TypeError):
        cut_for_detection(build_classifier("resnet18", width=8))
