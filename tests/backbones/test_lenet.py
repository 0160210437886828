"""LeNet-5 (LeCun et al. 1998): shapes, parameter count, options, the detection cut."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from backbones import build_backbone, build_classifier
from backbones.lenet import ScaledTanh, cut_for_detection
from backbones.summary import summarize


def test_paper_shapes_and_parameters():
    model = build_classifier("lenet5", num_classes=10, in_channels=1)
    summary = summarize(model, (1, 32, 32))
    shapes = {r.name: r.output_shape for r in summary.rows}
    assert shapes == {
        "features.c1": (6, 28, 28),
        "features.act1": (6, 28, 28),
        "features.s2": (6, 14, 14),
        "features.c3": (16, 10, 10),
        "features.act3": (16, 10, 10),
        "features.s4": (16, 5, 5),
        "classifier.c5": (120,),
        "classifier.act5": (120,),
        "classifier.f6": (84,),
        "classifier.act6": (84,),
        "classifier.output": (10,),
    }
    assert summary.params == 61_706  # "60,000 trainable parameters"
    assert isinstance(model.features.s2, nn.AvgPool2d) and isinstance(model.features.act1, ScaledTanh)


def test_scaled_tanh_maps_plus_minus_one_to_themselves():
    y = ScaledTanh()(torch.tensor([-1.0, 0.0, 1.0, 100.0]))
    assert torch.allclose(y, torch.tensor([-1.0, 0.0, 1.0, 1.7159]), atol=1e-4)


def test_options():
    model = build_classifier("lenet5", num_classes=4, activation="relu", pool="max")
    assert isinstance(model.features.act1, nn.ReLU) and isinstance(model.features.s4, nn.MaxPool2d)
    assert model.features.c1.in_channels == 3  # RGB by default, like every network here
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(ValueError, match="activation"):
        build_classifier("lenet5", activation="sigmoid")
    with pytest.raises(ValueError, match="pool"):
        build_classifier("lenet5", pool="lp")


def test_cut_for_detection_stride_4_and_fc_head():
    model = build_classifier("lenet5", num_classes=10)
    backbone = cut_for_detection(model).freeze(1)
    sizes = [backbone(torch.zeros(1, 3, s, s + 8))["s4"].shape[-2:] for s in (32, 36, 40)]
    assert [tuple(s) for s in sizes] == [(5, 7), (6, 8), (7, 9)]  # +4 pixels, +1 cell
    assert backbone.output_shape()["s4"].channels == 16 and backbone.output_shape()["s4"].stride == 4
    head = backbone.make_box_head()
    assert (head.resolution, head.out_channels) == (5, 84)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():  # trunk + head on the whole image = the classifier up to F6
        expected = model.classifier[:4](torch.flatten(model.features(x), 1))
        assert torch.allclose(head(backbone(x)["s4"]), expected)
    assert not any(p.requires_grad for p in backbone.stages["stem"].parameters())


def test_a_few_steps_of_sgd_fit_a_tiny_batch():
    torch.manual_seed(0)
    model = build_backbone("lenet5", num_classes=3)  # through the registry: trunk + head
    head = model.make_box_head()
    fc = nn.Linear(head.out_channels, 3)
    params = list(model.parameters()) + list(fc.parameters())
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2])
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(fc(head(model(x)["s4"])), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
