"""tools.benchmarks.svd: the settings factor copies of one detector (the original untouched, the ranks and
multiply-adds as named), and the quick section, run for real through ``tools/benchmark.py`` (a tiny AlexNet
Fast R-CNN trained from scratch), writes one row per setting with numbers that parse and agree with each
other (no assertion on accuracy or speed)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.benchmark_tables import table_rows
from torch import nn

from backbones.base import BoxHead
from rcnn.modeling import svd as modeling_svd
from rcnn.modeling.roi_heads import FastRCNNPredictor
from rcnn.modeling.svd import TruncatedSVDLinear
from tools.benchmarks import svd


class _Heads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers = nn.Sequential(nn.Flatten(1), nn.Linear(18, 32), nn.ReLU(), nn.Linear(32, 24), nn.ReLU())
        self.box_head = BoxHead(layers, out_channels=24, resolution=3)
        self.predictor = FastRCNNPredictor(24, 3)


class _Detector(nn.Module):
    """What the benchmark touches of a detector: ``roi_heads.box_head`` (fc6 18 -> 32, fc7 32 -> 24 on
    (R, 2, 3, 3) RoIs) and ``roi_heads.predictor``."""

    def __init__(self) -> None:
        super().__init__()
        self.roi_heads = _Heads()


@pytest.fixture
def detector() -> nn.Module:
    torch.manual_seed(0)
    return _Detector().eval()


def test_head_linears_are_fc6_then_fc7(detector):
    shapes = [(m.in_features, m.out_features) for _, m in svd.head_linears(detector)]
    assert shapes == [(18, 32), (32, 24)]
    assert svd.head_macs(detector) == 18 * 32 + 32 * 24


def test_compressed_factors_a_copy_at_the_named_ranks(detector):
    before = {k: v.clone() for k, v in detector.state_dict().items()}
    model = svd.compressed(detector, (8, None))
    top = [m for m in model.roi_heads.box_head.layers if isinstance(m, (TruncatedSVDLinear, nn.Linear))]
    assert [type(m) for m in top] == [TruncatedSVDLinear, nn.Linear]  # fc6 factored, fc7 kept
    assert top[0].rank == 8
    assert svd.head_macs(model) == 8 * (18 + 32) + 32 * 24
    for key, value in detector.state_dict().items():  # the original is untouched
        assert torch.equal(value, before[key]), key
    assert not any(isinstance(m, TruncatedSVDLinear) for m in detector.modules())


def test_full_rank_setting_computes_the_same_head(detector):
    model = svd.compressed(detector, (18, 24))  # min(u, v) of each layer: exact up to rounding
    x = torch.randn(5, 2, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(model.roi_heads.box_head(x), detector.roi_heads.box_head(x))


def test_shared_factors_give_the_same_layers_with_one_svd_per_layer(detector, monkeypatch):
    alone = [svd.compressed(detector, ranks) for ranks in ((8, 4), (4, 2))]
    calls = []
    real = modeling_svd.svd_factors
    monkeypatch.setattr(modeling_svd, "svd_factors", lambda linear: calls.append(linear) or real(linear))
    factors: dict = {}
    shared = [svd.compressed(detector, ranks, factors) for ranks in ((8, 4), (4, 2))]
    assert len(calls) == 2 and sorted(factors) == ["box_head.layers.1", "box_head.layers.3"]
    for a, b in zip(alone, shared):
        for (key, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), key


def test_too_many_ranks_is_an_error(detector):
    with pytest.raises(ValueError, match="2 fully connected layers, 3 ranks"):
        svd.compressed(detector, (8, 8, 8))


def _number(cell: str) -> float:
    value = float(cell.replace("**", "").rstrip("x"))
    assert math.isfinite(value), cell
    return value


@pytest.fixture(scope="module")
def quick_section(tmp_path_factory, load_tool) -> str:
    tool = load_tool("benchmark")
    root = tmp_path_factory.mktemp("svd")
    output = root / "bench.md"
    argv = ["--sections", "svd", "--quick", "--output", str(output), "--work-dir", str(root / "work")]
    assert tool.main(argv) == 0
    return output.read_text(encoding="utf-8")


def test_quick_section_has_one_row_per_setting(quick_section):
    text = quick_section
    assert text.count("<!-- benchmark:svd -->") == 1 and text.count("<!-- /benchmark:svd -->") == 1
    rows = table_rows(text, "| setting | ranks fc6 / fc7 |")
    assert [row[0] for row in rows] == [name for name, *_ in svd.SETTINGS]
    macs = []
    for row, (_, t6, t7) in zip(rows, svd.SETTINGS):
        name, ranks, mmacs, ap, ap50, change, head_ms, det_ms, head_up, det_up = row
        assert ranks == f"{t6 or '-'} / {t7 or '-'}"
        assert 0.0 <= _number(ap) <= 1.0 and 0.0 <= _number(ap50) <= 1.0
        assert _number(change) == pytest.approx(_number(ap) - _number(rows[0][3]), abs=1.5e-3)
        assert 0 < _number(head_ms) <= _number(det_ms)
        macs.append(_number(mmacs))
        expected = 9216 * 4096 + 4096 * 4096 if t6 is None else t6 * (9216 + 4096) + t7 * (4096 + 4096)
        assert _number(mmacs) == pytest.approx(expected / 1e6, abs=0.05)
    assert macs == sorted(macs, reverse=True)
    assert rows[0][5] == "+0.000" and rows[0][8] == "1.00x" and rows[0][9] == "**1.00x**"


def test_quick_section_records_commands_and_machine(quick_section):
    assert "`python tools/benchmark.py --sections svd --quick`" in quick_section
    assert "cores" in quick_section and "device cpu" in quick_section
    tools = [line.split()[1] for line in quick_section.splitlines() if line.startswith("python tools/")]
    assert tools == [
        "tools/make_synthetic.py", "tools/train_classifier.py", "tools/compute_proposals.py",
        "tools/train_detector.py",
    ]  # fmt: skip
    assert "configs/fast_rcnn/synthetic_alexnet.yaml" in quick_section
