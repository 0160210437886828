"""GoogLeNet: the paper's Table 1 layout, auxiliary classifiers, torchvision compatibility of googlenet_bn
and the detection cut."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from backbones import build_backbone, build_classifier, load_pretrained
from backbones.googlenet import INCEPTION_CONFIG, GoogLeNet, Inception, cut_for_detection


@pytest.fixture(scope="module")
def paper() -> GoogLeNet:
    torch.manual_seed(0)
    return build_classifier("googlenet", num_classes=10)


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_table1_shapes_at_224(paper):
    shapes = {}
    hooks = [
        getattr(paper, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, o.shape)
        )
        for name in ["conv1", "maxpool1", "conv3", "maxpool2", "maxpool3", "maxpool4", *INCEPTION_CONFIG]
    ]
    paper.eval()
    with torch.no_grad():
        out = paper(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert out.shape == (1, 10)
    expected = {
        "conv1": (64, 112), "maxpool1": (64, 56), "conv3": (192, 56), "maxpool2": (192, 28),
        "inception3a": (256, 28), "inception3b": (480, 28), "maxpool3": (480, 14),
        "inception4a": (512, 14), "inception4b": (512, 14), "inception4c": (512, 14),
        "inception4d": (528, 14), "inception4e": (832, 14), "maxpool4": (832, 7),
        "inception5a": (832, 7), "inception5b": (1024, 7),
    }  # fmt: skip
    assert {k: (s[1], s[2]) for k, s in shapes.items()} == expected
    assert all(s[2] == s[3] for s in shapes.values())


def test_paper_details(paper):
    assert isinstance(paper.norm1, nn.LocalResponseNorm) and isinstance(paper.norm2, nn.LocalResponseNorm)
    assert (paper.norm1.size, paper.norm1.alpha, paper.norm1.beta) == (5, 1e-4, 0.75)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in paper.modules())
    assert paper.inception3a.branch3[1].conv.kernel_size == (5, 5)  # a real 5x5 branch
    assert paper.maxpool4.kernel_size == 3
    assert paper.dropout.p == 0.4 and paper.aux1.dropout.p == 0.7
    assert isinstance(paper.aux1.pool, nn.AvgPool2d) and paper.aux1.pool.kernel_size == 5
    assert paper.aux1.pool.stride == 3 and paper.aux1.conv.conv.out_channels == 128
    assert (paper.aux1.fc1.out_features, paper.aux2.conv.conv.in_channels) == (1024, 528)
    assert torch.all(paper.conv1.conv.bias == 0.2) and torch.all(paper.fc.bias == 0)
    bound = 3**0.5 / (64 * 9) ** 0.5  # Caffe xavier: U(+-sqrt(3 / fan_in)), conv3 has fan_in 64 * 3 * 3
    w = paper.conv3.conv.weight
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound


def test_inception_concatenates_the_four_branches():
    block = Inception(*INCEPTION_CONFIG["inception4e"])
    x = torch.randn(1, 528, 9, 9)
    y = block(x)
    assert y.shape == (1, 256 + 320 + 128 + 128, 9, 9)
    branches = [block.branch1(x), block.branch2(x), block.branch3(x), block.branch4(x)]
    assert torch.equal(y, torch.cat(branches, 1))
    assert (y >= 0).all()  # every branch ends with a ReLU


def test_training_mode_returns_logits_and_two_auxiliary_logits(paper):
    paper.train()
    out = paper(torch.randn(1, 3, 224, 224))
    paper.eval()
    assert isinstance(out, tuple) and len(out) == 3
    assert [o.shape for o in out] == [(1, 10)] * 3
    assert not torch.allclose(out[1], out[2])
    no_aux = build_classifier("googlenet", num_classes=3, aux_logits=False)
    assert no_aux.aux1 is None and not any("aux" in k for k in no_aux.state_dict())


def test_googlenet_bn_loads_torchvision_checkpoint_with_identical_logits(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True).eval()
    assert reference.transform_input is False  # torchvision's default without weights, and ours
    reference.transform_input = True  # exercise the re-normalisation as well (ImageNet checkpoint setting)
    _randomise_bn(reference)
    path = tmp_path / "googlenet.pth"
    torch.save(reference.state_dict(), path)
    model = build_classifier("googlenet_bn", transform_input=True).eval()
    assert list(model.state_dict()) == list(reference.state_dict())
    load_pretrained(model, path, strict_classes=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-4, atol=1e-4)
    # the auxiliary heads too: training mode, dropout off, BN statistics frozen (torchvision: aux2, aux1)
    for m in (model, reference):
        m.train()
        for d in m.modules():
            if isinstance(d, nn.Dropout):
                d.p = 0.0
            elif isinstance(d, nn.BatchNorm2d):
                d.eval()
    with torch.no_grad():
        ours, ref = model(x), reference(x)
    torch.testing.assert_close(ours[0], ref.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours[1], ref.aux_logits1, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours[2], ref.aux_logits2, rtol=1e-4, atol=1e-4)

    # fine-tuning for other classes: the three class layers keep their initialisation, the rest loads
    other = build_classifier("googlenet_bn", num_classes=7)
    with pytest.warns(UserWarning, match="aux1.fc2, aux2.fc2, fc"):
        load_pretrained(other, path)
    torch.testing.assert_close(
        other.inception5b.branch1.conv.weight, reference.inception5b.branch1.conv.weight
    )
    assert other.fc.out_features == other.aux1.fc2.out_features == 7


def test_googlenet_bn_layout():
    model = build_classifier("googlenet_bn")
    assert model.dropout.p == 0.2 and model.transform_input is False
    assert model.inception3a.branch3[1].conv.kernel_size == (3, 3)  # torchvision's quirk
    assert model.conv1.bn.eps == 1e-3 and model.conv1.conv.bias is None
    assert sum(p.numel() for p in model.parameters()) == 13_004_888  # torchvision's, with the aux heads
    assert sum(p.numel() for n, p in model.named_parameters() if "aux" not in n) == 6_624_904


@pytest.mark.parametrize("name", ["googlenet", "googlenet_bn"])
def test_detection_cut(name):
    model = build_classifier(name, num_classes=5).eval()
    backbone = cut_for_detection(model).eval()
    spec = backbone.output_shape()["s16"]
    assert (spec.channels, spec.stride) == (832, 16)
    assert backbone.stage_names == ["stem", "inception3", "inception4"]
    head = backbone.make_box_head()
    assert (head.resolution, head.out_channels) == (14, 1024)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        feats = backbone(x)["s16"]
        assert feats.shape == (1, 832, 6, 8)
        assert head(torch.randn(2, 832, 14, 14)).shape == (2, 1024)
        # trunk + head are the classifier without its dropout/fc
        torch.testing.assert_close(model.fc(head(feats)), model(x), rtol=1e-4, atol=1e-4)
    assert not any("aux" in n for n, _ in backbone.named_modules())


def test_build_backbone_freezes_the_stem():
    backbone = build_backbone("googlenet", freeze_at=2)
    assert all(not p.requires_grad for p in backbone.stages["stem"].parameters())
    assert all(not p.requires_grad for p in backbone.stages["inception3"].parameters())
    assert all(p.requires_grad for p in backbone.stages["inception4"].parameters())
    with pytest.raises(TypeError):
        cut_for_detection(nn.Conv2d(3, 3, 1))
