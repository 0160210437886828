"""tools.benchmarks.efficiency: the quick section has the matmul peak row and one row per network, batch and
memory format, with fractions that parse (no assertion on speed)."""

from __future__ import annotations

import math

import torch
from helpers.benchmark_tables import table_rows

from tools.benchmarks import efficiency


def test_run_section_quick(monkeypatch):
    monkeypatch.setattr(efficiency, "QUICK_CASES", (efficiency.Case("resnet18", 32, (1, 2)),))
    monkeypatch.setattr(efficiency, "QUICK_MATMUL_N", 256)
    threads = torch.get_num_threads()
    text = efficiency.run_section(quick=True, reps=2)
    assert torch.get_num_threads() == threads  # restored
    assert text.startswith("## Efficiency: classifier forward vs the measured matmul peak\n")
    rows = table_rows(text, "| network |")
    assert rows[0][0] == "dense matmul 256x256 float32"
    assert float(rows[0][4]) == round(256**3 / 1e9, 3)
    expected = [
        (case.name, f"{case.size}x{case.size}", str(batch), fmt.replace("_", "-"))
        for case in efficiency.QUICK_CASES
        for batch in case.batches
        for fmt in efficiency.MEMORY_FORMATS
    ]
    assert [tuple(row[:4]) for row in rows[1:]] == expected
    macs = {float(row[4]) for row in rows[1:]}
    assert len(macs) == 1 and macs.pop() > 0  # per image: the same whatever the batch and format
    for row in rows:
        for cell in row[5:]:  # ms, GMAC/s, fraction of the peak (wall, CPU time)
            value = float(cell.replace("**", ""))
            assert math.isfinite(value) and value > 0, row
    assert "python tools/benchmark.py --sections efficiency --quick --reps 2" in text
    assert "torch " + torch.__version__ in text and "cores" in text


def test_count_macs_uses_the_summary():
    model = efficiency.build_model("resnet18", "cpu", "contiguous")
    # ResNet-18 at 224x224: 1.82 G multiply-adds (the paper's 1.8 G)
    assert 1.8e9 < efficiency.count_macs(model, 224) < 1.85e9


def test_main_prints_the_section(monkeypatch, capsys):
    calls = []

    def fake_run_section(**kwargs):
        calls.append(kwargs)
        return "## Efficiency: classifier forward vs the measured matmul peak\n"

    monkeypatch.setattr(efficiency, "run_section", fake_run_section)
    efficiency.main(["--quick", "--threads", "2"])
    assert calls == [{"device": "cpu", "quick": True, "threads": 2, "reps": None}]
    assert capsys.readouterr().out.startswith("## Efficiency: classifier forward vs the measured matmul")
