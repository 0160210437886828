"""ResNet: torchvision checkpoint compatibility, width scaling, initialisation and the C4 detection cut."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from backbones import build_backbone, build_classifier, freeze_batchnorm, load_pretrained
from backbones.resnet import CLASSIFIERS, BasicBlock, Bottleneck, ResNet, cut_for_detection


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine parameters, so that eval-mode comparisons exercise them."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_checkpoint_loads_strictly_with_identical_logits(name, tmp_path):
    torch.manual_seed(0)
    reference = getattr(torchvision.models, name)(weights=None).eval()
    _randomise_bn(reference)
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)

    model = build_classifier(name).eval()
    assert list(model.state_dict()) == list(reference.state_dict())  # same names, same order
    load_pretrained(model, path, strict_classes=True)
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_state_dict_shapes_match_torchvision(name):
    ours = {k: v.shape for k, v in CLASSIFIERS[name](num_classes=10).state_dict().items()}
    ref = getattr(torchvision.models, name)(weights=None, num_classes=10).state_dict()
    assert ours == {k: v.shape for k, v in ref.items()}


@pytest.mark.parametrize("name,block", [("resnet18", BasicBlock), ("resnet50", Bottleneck)])
@pytest.mark.parametrize("width", [16, 32])
def test_width_scales_every_channel_count(name, block, width):
    model = build_classifier(name, num_classes=7, width=width)
    e = block.expansion
    assert model.conv1.out_channels == width
    assert model.stage_channels == [width * e, 2 * width * e, 4 * width * e, 8 * width * e]
    for layer, c in zip([model.layer1, model.layer2, model.layer3, model.layer4], model.stage_channels):
        for blk in layer:
            assert isinstance(blk, block)
            assert blk.last_bn.num_features == c
    assert model.fc.in_features == 8 * width * e
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 7)
    # parameters scale roughly with width^2
    with torch.device("meta"):  # counted only
        full = sum(p.numel() for p in build_classifier(name, num_classes=7).parameters())
    small = sum(p.numel() for p in model.parameters())
    assert small < full * (width / 64) ** 2 * 1.2


def test_every_conv_is_followed_by_batch_norm_and_has_no_bias():
    model = build_classifier("resnet50")
    modules = list(model.modules())
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    bns = [m for m in modules if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == len(bns) == 53  # 49 convolutions of the paper's 50 layers + 4 projections
    assert all(c.bias is None for c in convs)
    for blk in model.modules():
        if isinstance(blk, Bottleneck):
            assert [blk.bn1.num_features, blk.bn2.num_features] == [blk.conv1.out_channels] * 2
            assert blk.bn3.num_features == blk.conv3.out_channels


def test_he_initialisation_and_zero_init_residual_option():
    torch.manual_seed(0)
    model = build_classifier("resnet50")
    conv = model.layer3[0].conv2  # 3x3, 256 -> 256: fan_out = 256 * 9
    assert conv.weight.std().item() == pytest.approx((2 / (256 * 9)) ** 0.5, rel=0.05)
    assert all(blk.bn3.weight.abs().min() == 1 for blk in model.modules() if isinstance(blk, Bottleneck))

    zero = build_classifier("resnet18", zero_init_residual=True)
    for blk in zero.modules():
        if isinstance(blk, BasicBlock):
            assert torch.all(blk.bn2.weight == 0) and torch.all(blk.bn1.weight == 1)
    # with zero-initialised residual branches every block starts as the identity (after the ReLU)
    x = torch.relu(torch.randn(1, 64, 8, 8))
    assert torch.equal(zero.layer1[0](x), x)


def test_stride_in_1x1_moves_the_stride_only():
    paper = build_classifier("resnet50", stride_in_1x1=True)
    v15 = build_classifier("resnet50")
    assert paper.layer2[0].conv1.stride == (2, 2) and paper.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    assert {k: v.shape for k, v in paper.state_dict().items()} == {
        k: v.shape for k, v in v15.state_dict().items()
    }


@pytest.mark.parametrize("name,width", [("resnet18", 16), ("resnet18", 64), ("resnet50", 16)])
def test_c4_cut_strides_channels_and_box_head(name, width):
    model = build_classifier(name, width=width).eval()
    backbone = cut_for_detection(model).eval()
    e = model.block.expansion
    spec = backbone.output_shape()["s16"]
    assert (spec.channels, spec.stride) == (4 * width * e, 16)
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        feats = backbone(x)
        assert list(feats) == ["s16"]
        assert feats["s16"].shape == (1, spec.channels, 128 // spec.stride, 96 // spec.stride)
        head = backbone.make_box_head()
        assert head.resolution == 14 and head.out_channels == 8 * width * e
        rois = torch.randn(3, spec.channels, head.resolution, head.resolution)
        assert head(rois).shape == (3, head.out_channels)
        # trunk + head reproduce the classifier's pooled features (the modules are shared)
        pooled = head(feats["s16"])
        torch.testing.assert_close(model.fc(pooled), model(x), rtol=1e-5, atol=1e-5)
    assert backbone.stage_names == ["stem", "layer1", "layer2", "layer3"]


@pytest.mark.parametrize("dilate", [[False, True, False], [False, True, True], [True, True, True]])
def test_replace_stride_with_dilation_computes_torchvision_function(dilate):
    torch.manual_seed(0)
    reference = torchvision.models.resnet50(weights=None, replace_stride_with_dilation=dilate).eval()
    _randomise_bn(reference)
    model = build_classifier("resnet50", replace_stride_with_dilation=dilate).eval()
    model.load_state_dict(reference.state_dict())
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-4)


def test_basic_block_dilation_follows_torchvision_rule():
    # torchvision's BasicBlock refuses dilation; ours follows the bottleneck's rule: a dilated stage's
    # first 3x3 convolution keeps the previous dilation, the later ones use the new one, and it carries on
    model = build_classifier("resnet18", width=16, replace_stride_with_dilation=[False, True, False])
    geometry = {
        name: [(m.stride[0], m.dilation[0], m.padding[0]) for m in layer.modules()
               if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        for name, layer in (("layer3", model.layer3), ("layer4", model.layer4))
    }  # fmt: skip
    assert geometry["layer3"] == [(1, 1, 1), (1, 2, 2), (1, 2, 2), (1, 2, 2)]
    assert geometry["layer4"] == [(2, 2, 2), (1, 2, 2), (1, 2, 2), (1, 2, 2)]
    plain = build_classifier("resnet18", width=16)
    plain.load_state_dict(model.state_dict())  # the same parameters: checkpoints move between them


def test_dilated_layer3_gives_a_stride_8_trunk_with_the_same_head():
    model = build_classifier("resnet18", width=16, replace_stride_with_dilation=[False, True, False]).eval()
    backbone = cut_for_detection(model).eval()
    assert backbone.output_shape() == {"s8": backbone.output_shape()["s8"]}
    assert backbone.output_shape()["s8"].stride == 8
    with torch.no_grad():
        assert backbone(torch.randn(2, 3, 128, 96))["s8"].shape == (2, 64, 16, 12)
        head = backbone.make_box_head()
        assert head(torch.randn(3, 64, 14, 14)).shape == (3, 128)  # layer4 still strides 14 -> 7
    with pytest.raises(ValueError, match="replace_stride_with_dilation"):
        build_classifier("resnet18", replace_stride_with_dilation=[True])


def test_build_backbone_freeze_and_frozen_bn():
    backbone = build_backbone("resnet18", freeze_at=2, frozen_bn=True, width=16)
    params = list(backbone.stages.named_parameters())
    frozen = {n.split(".")[0] for n, p in params if not p.requires_grad}
    trainable = {n.split(".")[0] for n, p in params if p.requires_grad}
    assert frozen == {"stem", "layer1"} and trainable == {"layer2", "layer3"}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in backbone.modules())
    head = backbone.make_box_head()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in head.modules())
    assert all(p.requires_grad for p in head.parameters())
    assert freeze_batchnorm(nn.Identity()).__class__ is nn.Identity


def test_cut_rejects_other_networks():
    with pytest.raises(TypeError):
        cut_for_detection(nn.Linear(2, 2))


def test_trains_a_step():
    model = build_classifier("resnet18", num_classes=5, width=8)
    assert isinstance(model, ResNet)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    before = model.fc.weight.detach().clone()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.step()
    assert not torch.equal(before, model.fc.weight)
