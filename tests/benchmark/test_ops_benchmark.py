"""The ops benchmark (tools.benchmarks.ops): its section's shape on tiny cases, its command line, and the
correctness half of it: our NMS and RoI ops give torchvision.ops' results, exactly, on the benchmark's own
inputs. Nothing here asserts on timings."""

from __future__ import annotations

import pytest
import torch
import torchvision

from tools.benchmarks import ops as bench
from tools.benchmarks.ops import FULL_CASES, OpCase

TINY_CASES = (
    OpCase("nms", 200),
    OpCase("batched_nms", 1200, classes=3),  # > 1000 boxes: torchvision's per-class path on the CPU
    OpCase("roi_pool", 16, batch=2),
    OpCase("roi_align", 16, batch=2),
)


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(bench, "QUICK_CASES", TINY_CASES)
    monkeypatch.setattr(bench, "CHANNELS", 8)


def table_rows(section: str) -> list[list[str]]:
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| op | case |") and set(lines[1]) <= {"|", "-"}
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_quick_section_has_one_identical_row_per_case(tiny):
    threads = torch.get_num_threads()
    section = bench.run_section(quick=True)
    assert torch.get_num_threads() == threads  # restored
    assert section.startswith("## Ops: ours vs torchvision.ops\n")
    rows = table_rows(section)
    assert len(rows) == len(TINY_CASES)
    for row, case in zip(rows, TINY_CASES):
        assert len(row) == 7
        assert row[0] == case.op and row[1] == case.detail
        assert float(row[2]) > 0 and float(row[3]) > 0
        assert row[5] in ("yes", "no")
        assert row[6].startswith("identical"), row
    assert "`python tools/benchmark.py --sections ops --quick`" in section
    assert f"torchvision {torchvision.__version__}, 1 intra-op thread(s)" in section


def test_main_quick_prints_the_section(tiny, capsys):
    bench.main(["--quick", "--reps", "1"])
    out = capsys.readouterr().out
    assert out.startswith("## Ops: ours vs torchvision.ops")
    assert len(table_rows(out)) == len(TINY_CASES)
    assert "`python tools/benchmark.py --sections ops --quick --reps 1`" in out


def test_cases_cover_the_issue():
    sizes = {op: sorted({(c.n, c.classes, c.batch) for c in FULL_CASES if c.op == op}) for op in bench.OPS}
    assert sizes["nms"] == [(1000, 1, 1), (6000, 1, 1), (12000, 1, 1)]
    assert sizes["batched_nms"] == [(12000, 1, 1), (12000, 20, 1), (12000, 80, 1)]
    for op in ("roi_pool", "roi_align"):
        assert [n for n, _, _ in sizes[op]] == [128, 512, 1024]
    assert bench.FEATURE_HW == (38, 63) and bench.CHANNELS == 256


def test_boxes_are_valid_and_seeded():
    boxes = bench.make_boxes(3000)
    assert boxes.shape == (3000, 4) and boxes.dtype == torch.float32
    assert (boxes[:, 2:] - boxes[:, :2]).min() >= 1
    assert boxes[:, 0::2].min() >= 0 and boxes[:, 0::2].max() <= 1000
    assert boxes[:, 1::2].min() >= 0 and boxes[:, 1::2].max() <= 600
    assert torch.equal(boxes, bench.make_boxes(3000))
    scores = bench.make_scores(3000)
    assert scores.unique().numel() == 3000  # no ties


@pytest.mark.parametrize("case", FULL_CASES, ids=lambda c: f"{c.op}-{c.n}-{c.classes}c-{c.batch}b")
def test_ours_equal_torchvision_on_the_benchmark_inputs(case, monkeypatch):
    """Every full-size case (the RoI ops on a narrower feature map: channels change no index or bin)."""
    if case.op.startswith("roi"):
        monkeypatch.setattr(bench, "CHANNELS", 4)
    inputs = bench.make_inputs(case)
    runs = bench.make_runs(case, inputs)
    theirs, ours = runs["torchvision"](), runs["ours"]()
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    if case.op.endswith("nms"):
        assert 0 < len(ours[0]) < case.n  # some boxes suppressed, some kept
    else:
        assert ours[0].shape == (case.n, bench.CHANNELS, 7, 7)
        assert ours[1].shape == inputs["features"].shape and ours[1].abs().sum() > 0
    assert bench.compare_outputs(ours, theirs).startswith("identical")


def test_compare_outputs_reports_differences():
    keep = torch.tensor([3, 1, 2])
    assert bench.compare_outputs((keep,), (keep.clone(),)) == "identical (3 kept)"
    assert bench.compare_outputs((keep,), (torch.tensor([3, 1, 0]),)).startswith("differ: 2 indices")
    assert bench.compare_outputs((keep,), (torch.tensor([3, 2, 1]),)) == "differ: kept order"
    x = torch.rand(4, 3)
    assert bench.compare_outputs((x,), (x + 1e-7,)).startswith("allclose")
    assert bench.compare_outputs((x,), (x + 1,)).startswith("differ")
