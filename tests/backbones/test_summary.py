"""summarize(): the counting rules on a hand-checked model, and the figures quoted for VGG-16 and AlexNet."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from backbones import build_classifier
from backbones.summary import GroupTotals, summarize


class Tiny(nn.Module):
    """Every counting rule once; input 4x10x10."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, groups=2)  # 152 params; 800 outputs * 2 * 9 = 14,400 MACs
        self.bn = nn.BatchNorm2d(8)  # 16 params, 0 MACs, in place
        self.act = nn.ReLU()  # called twice
        self.pool = nn.MaxPool2d(2)  # 8x5x5 = 200 values
        self.up = nn.ConvTranspose2d(8, 2, 2, stride=2)  # 66 params; 200 inputs * 2 * 4 = 1,600 MACs; 2x10x10
        self.same = nn.AdaptiveAvgPool2d(10)  # already 10x10: an identity, not counted
        self.fc = nn.Linear(200, 3)  # 603 params, 600 MACs
        self.fc2 = nn.Linear(3, 3)  # 12 params, called twice: 9 + 9 MACs
        self.aux = nn.Linear(200, 3)  # training only (like GoogLeNet's auxiliary heads): 603 params

    def forward(self, x):
        x = self.act(self.pool(self.act(self.bn(self.conv(x)))))
        x = self.same(self.up(x)).flatten(1)
        out = self.fc2(self.fc2(self.fc(x)))
        return (out, self.aux(x)) if self.training else out


def test_counting_rules_on_a_hand_checked_model():
    model = Tiny().train()
    summary = summarize(model, (4, 10, 10), name="tiny")
    assert [r.name for r in summary.rows] == [
        "conv",
        "bn",
        "act",
        "pool",
        "act",
        "up",
        "same",
        "fc",
        "fc2",
        "fc2",
    ]
    rows = summary.rows
    assert [r.macs for r in rows] == [14_400, 0, 0, 0, 0, 1_600, 0, 600, 9, 9]
    assert [r.params for r in rows] == [152, 16, 0, 0, 0, 66, 0, 603, 12, 0]  # a shared layer counted once
    assert [r.output_shape for r in rows[:4]] == [(8, 10, 10), (8, 10, 10), (8, 10, 10), (8, 5, 5)]
    assert [r.counted for r in rows] == [True, False, False, True, False, True, False, True, True, True]
    assert summary.macs == 16_618
    assert summary.params == 152 + 16 + 66 + 603 + 12 + 603  # the aux head did not run but is counted
    assert summary.activations == 400 + 800 + 200 + 200 + 3 + 3 + 3  # input + counted outputs
    assert summary.activation_mb == pytest.approx(summary.activations * 4 / 2**20)

    # run in eval mode without gradients, training mode restored
    assert model.training and model.bn.num_batches_tracked.item() == 0
    assert model.bn.running_mean.abs().sum() == 0


def test_grouping_by_prefix():
    model = nn.Sequential()
    model.add_module("block", Tiny())
    model.add_module("block2", nn.Linear(3, 2))
    summary = summarize(model, (4, 10, 10))
    assert summary.by_prefix("block") == GroupTotals(params=1452, macs=16_618, activations=1209)
    assert summary.by_prefix("block.aux") == GroupTotals(params=603, macs=0, activations=0)
    assert summary.by_prefix("block2") == GroupTotals(params=8, macs=6, activations=2)
    assert [r.name for r in summary.rows_under("block.fc")] == ["block.fc"]  # not block.fc2
    assert len(summary.rows_under("")) == len(summary.rows) == 11
    assert summary.by_prefix("").params == summary.params
    with pytest.raises(KeyError, match="no module named 'block.nope'"):
        summary.by_prefix("block.nope")


def test_table_lists_layers_and_totals():
    text = summarize(Tiny(), (4, 10, 10), name="tiny").table()
    assert "conv" in text and "Conv2d" in text and "8x10x10" in text and "14,400" in text
    assert "tiny, input 4x10x10" in text and "1,452" in text and "16,618" in text


# The cs231n VGG-16 table (https://cs231n.github.io/convolutional-networks/#case), "memory" column:
# each block's convolutions then its pool, then fc6-fc8.
CS231N_VGG16 = (
    [224 * 224 * 64] * 2
    + [112 * 112 * 64]
    + [112 * 112 * 128] * 2
    + [56 * 56 * 128]
    + [56 * 56 * 256] * 3
    + [28 * 28 * 256]
    + [28 * 28 * 512] * 3
    + [14 * 14 * 512]
    + [14 * 14 * 512] * 3
    + [7 * 7 * 512]
    + [4096, 4096, 1000]
)


def test_vgg16_figures():
    with torch.device("meta"):  # shapes only: the same summary without 528 MB of weights
        summary = summarize(build_classifier("vgg16"), (3, 224, 224))
    assert summary.params == 138_357_544  # "138M parameters"
    assert [r.activations for r in summary.rows if r.counted] == CS231N_VGG16
    # input + the rows above: 15.24 M values, 58 MiB per image in fp32 (the rows of the cs231n table sum
    # to this; the "24M" printed under it does not follow from them)
    assert summary.activations == 224 * 224 * 3 + sum(CS231N_VGG16) == 15_237_608
    assert summary.activation_mb == pytest.approx(58.13, abs=0.01)
    assert summary.macs == 15_470_264_320  # 15.5 G multiply-adds
    assert summary.by_prefix("features").params == 14_714_688
    assert summary.by_prefix("classifier") == GroupTotals(123_642_856, 123_633_664, 9_192)


def test_alexnet_figures():
    with torch.device("meta"):
        summary = summarize(build_classifier("alexnet"), (3, 227, 227))
    conv1 = summary.rows[0]
    assert (conv1.name, conv1.output_shape, conv1.params) == ("features.conv1", (96, 55, 55), 34_944)
    assert summary.params == 60_965_224
    # Sec. 3.5: "the number of neurons in the network's remaining layers is given by
    # 253,440-186,624-64,896-64,896-43,264-4096-4096-1000"; 55*55*96 = 290,400 for conv1
    neurons = [r.activations for r in summary.rows if r.type in ("Conv2d", "Linear")]
    assert neurons == [290_400, 186_624, 64_896, 64_896, 43_264, 4096, 4096, 1000]
    # grouped convolutions do half the work: conv2 = 27*27*256 outputs * (96/2)*5*5
    assert summary.rows_under("features.conv2")[0].macs == 27 * 27 * 256 * 48 * 25
    assert summary.macs == 724_406_816
