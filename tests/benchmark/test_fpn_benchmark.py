"""tools.benchmarks.fpn: the quick section has the pair table's rows and columns, detections the same as
torchvision's, fractions of the FLOP-bound limit that are measured images/s over the bound, and the C4
table (no assertion on speed)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict

import pytest
from helpers.benchmark_tables import table_rows

from tools.benchmarks import fpn
from tools.benchmarks.fpn_models import Case
from tools.benchmarks.peak_memory import peak_memory_mb

TINY = Case("R50-FPN, 64x64 (small top-n)", 64, 64, (1,), 1, small=True)  # smaller than --quick's


@pytest.fixture(scope="module")
def text() -> str:
    """The quick section on :data:`TINY`, a 256x256 matmul, without the peak-memory processes (one is
    measured below): a few seconds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fpn, "QUICK_CASES", (TINY,))
        mp.setattr(fpn, "QUICK_MATMUL_N", 256)
        mp.setattr(fpn, "_peak", lambda *args: 1.0)
        return fpn.run_section(quick=True, reps=1)


def _header(text: str, start: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(start))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_pair_table_rows_columns_and_same_detections(text):
    assert text.startswith(fpn.TITLE + "\n")
    assert _header(text, "| case |") == fpn.PAIR_HEADER
    case = TINY
    rows = table_rows(text, "| case |")
    runs = [f"inference, batch {b}" for b in case.infer_batches] + [f"training, batch {case.train_batch}"]
    assert [(row[0], row[1]) for row in rows] == [(case.name, run) for run in runs]
    checks = [line for line in text.splitlines() if line.startswith(f"  - {case.name}, batch ")]
    assert len(checks) == len(case.infer_batches)
    for check in checks:
        counts = re.search(r": same \(([0-9/]+) dets", check)
        assert counts, check
        assert all(int(c) > 0 for c in counts.group(1).split("/")), check  # detections to compare
    assert "python tools/benchmark.py --sections fpn --quick" in text


def test_fractions_are_images_per_second_over_the_bound(text):
    peak = float(re.search(r"matmul peak of this run is \*\*([0-9.]+) GMAC/s\*\*", text).group(1))
    assert peak > 0
    for row in table_rows(text, "| case |"):
        cell = dict(zip(fpn.PAIR_HEADER, row))
        assert float(cell["peak MB tv"]) == float(cell["peak MB ours"]) == 1.0  # the stub's figure
        if row[1].startswith("training"):
            assert cell["unit"] == "iterations/s" and cell["fraction ours"] == "-"
            continue
        gmacs, bound = float(cell["GMACs per image"]), float(cell["FLOP-bound images/s"])
        assert 0 < int(cell["RoIs per image"]) <= 100 and gmacs > 0
        assert math.isclose(bound, peak / gmacs, rel_tol=0.01)
        for model, column in (("torchvision", "fraction tv"), ("ours", "fraction ours")):
            fraction, ips = float(cell[column]), float(cell[model])
            assert fraction > 0
            assert math.isclose(fraction, ips / bound, rel_tol=0.02, abs_tol=0.006 / bound + 1e-3)


def test_c4_table_against_fpn(text):
    assert _header(text, "| model |") == fpn.C4_HEADER
    c4, fpn_row = table_rows(text, "| model |")
    case = TINY
    assert (c4[0], fpn_row[0]) == ("R50-C4", "R50-FPN")
    assert c4[1] == fpn_row[1] == f"{case.height}x{case.width}"
    pair = dict(zip(fpn.PAIR_HEADER, table_rows(text, "| case |")[0]))
    c4, fpn_row = (dict(zip(fpn.C4_HEADER, row)) for row in (c4, fpn_row))
    assert fpn_row["images/s"] == pair["ours"]  # the same timed call as the pair's batch-1 row
    assert fpn_row["GMACs per image"] == pair["GMACs per image"]
    for row in (c4, fpn_row):
        ips, bound, fraction = (float(row[k]) for k in ("images/s", "FLOP-bound images/s", "fraction"))
        assert int(row["RoIs per image"]) > 0 and float(row["GMACs per image"]) > 0 and fraction > 0
        assert math.isclose(fraction, ips / bound, rel_tol=0.02, abs_tol=0.006 / bound + 1e-3)
    assert c4["GMACs per image"] != fpn_row["GMACs per image"]  # two designs, two counts


def test_peak_memory_of_an_fpn_model_in_its_own_process():
    """The peak-memory child builds and runs the fpn section's models (``"models"`` in the spec; with a
    wrong module or model the child fails and ``peak_memory_mb`` raises). At 64x64 the runs reuse memory
    the untimed call freed, so the figure may be 0 MB (tests/benchmark/test_detector_benchmark.py checks
    that the runs' working memory is counted)."""
    spec = {"models": "tools.benchmarks.fpn_models", "case": asdict(TINY), "model": "ours", "mode": "infer",
            "batch": 1, "device": "cpu", "threads": 1, "runs": 1}  # fmt: skip
    peak = peak_memory_mb(spec, "cpu")
    assert math.isfinite(peak) and peak >= 0.0
