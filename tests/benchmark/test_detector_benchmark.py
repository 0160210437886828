"""The detector benchmark's peak memory (tools.benchmarks.peak_memory): the working memory of the runs, not
the high-water mark that building the model left behind (which made every figure 0 MB). Measured as the
benchmark does it, in a fresh process (in this one, memory that earlier tests freed would be reused without
growing the RSS)."""

import math
import re
from dataclasses import asdict

from helpers.benchmark_tables import table_rows

from tools.benchmarks import detector
from tools.benchmarks.detector_models import QUICK_CASES, Case, load_model_config
from tools.benchmarks.flop_bound import detector_macs
from tools.benchmarks.peak_memory import peak_memory_mb


def test_peak_memory_counts_the_runs_working_memory():
    spec = {"case": asdict(QUICK_CASES[0]), "model": "ours", "mode": "infer", "batch": 2, "device": "cpu",
            "threads": 1, "runs": 1}  # fmt: skip
    assert peak_memory_mb(spec, "cpu") > 1.0  # MB: two 128x128 images through the trunk and 200 RoIs


def test_quick_section_reports_the_flop_bound_fractions(monkeypatch):
    """Every inference row has GMACs per image, the FLOP-bound images/s and a fraction per model equal to its
    measured images/s over the bound (within the table's rounding); training rows have none. A smaller case
    and matmul than --quick's, and no peak-memory processes (the test above measures one), keep it fast."""
    tiny = Case("synthetic ResNet-18/16, 64x64", "synthetic_resnet18.yaml", 9, 64, 64, (1, 2), 1)
    monkeypatch.setattr(detector, "QUICK_CASES", (tiny,))
    monkeypatch.setattr(detector, "QUICK_MATMUL_N", 256)
    monkeypatch.setattr(detector, "_peak", lambda *args: 1.0)
    text = detector.run_section(quick=True, reps=1)
    header = next(line for line in text.splitlines() if line.startswith("| case |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    rows = table_rows(text, "| case |")
    case = tiny
    assert [row[1] for row in rows] == [f"inference, batch {b}" for b in case.infer_batches] + [
        f"training, batch {case.train_batch}"
    ]
    peak = float(re.search(r"matmul peak of this run is \*\*([0-9.]+) GMAC/s\*\*", text).group(1))
    assert peak > 0
    cfg = load_model_config(case)
    for row in rows:
        cell = dict(zip(columns, row))
        if row[1].startswith("training"):
            assert all(cell[c] == "-" for c in detector.BOUND_COLUMNS)
            continue
        gmacs, bound = float(cell["GMACs per image"]), float(cell["FLOP-bound images/s"])
        rois = int(cell["RoIs per image"])
        assert 0 < rois <= cfg.rpn.post_nms_top_n_test
        want = detector_macs(cfg, case.num_classes, (case.height, case.width), num_rois=rois)
        assert gmacs == round(want / 1e9, 3) and gmacs > 0
        assert math.isclose(bound, peak / gmacs, rel_tol=0.01)  # both rounded in the table
        for model, column in (("torchvision", "fraction tv"), ("ours", "fraction ours"),
                              ("ours, optimized", "fraction optimized")):  # fmt: skip
            fraction, ips = float(cell[column]), float(cell[model])
            assert 0 < fraction
            assert math.isclose(fraction, ips / bound, rel_tol=0.02, abs_tol=0.006 / bound + 1e-3)
