"""tools.benchmarks.roi_kernels: the quick section has one row per case whose outputs (and gradients) agree
with torchvision's and whose times parse (no assertion on speed); the section refuses a CUDA device."""

from __future__ import annotations

import pytest
from helpers.benchmark_tables import table_rows

from tools.benchmarks import roi_kernels


@pytest.fixture(scope="module")
def section() -> str:
    return roi_kernels.run_section(quick=True)


def test_one_row_per_case_with_equal_outputs(section):
    rows = table_rows(section, "| case | map (N, C, H, W) |")
    assert [row[0] for row in rows] == [case.name for case in roi_kernels.QUICK_CASES]
    for row, case in zip(rows, roi_kernels.QUICK_CASES):
        name, shape, rois, tv_ms, ours_ms, speedup, outputs = row
        assert shape.startswith(f"({case.batch}, {case.channels}, {case.height}, {case.width})")
        assert int(rois) == case.batch * case.rois_per_image
        assert float(tv_ms) > 0 and float(ours_ms) > 0
        # the column is torchvision / ours of the unrounded times: inside what the 2-decimal ms cells allow
        tv, ours, half = float(tv_ms), float(ours_ms), 0.005
        low, high = (tv - half) / (ours + half), (tv + half) / max(ours - half, 1e-9)
        assert low - half <= float(speedup.strip("*x")) <= high + half, row
        assert outputs.startswith("same"), row


def test_training_case_compares_gradients_too():
    case = roi_kernels.QUICK_CASES[1]
    features, boxes = roi_kernels.make_inputs(case)
    runs = roi_kernels.make_runs(case, features, boxes)
    ours, theirs = runs["ours"](), runs["torchvision"]()
    assert len(ours) == 2 and ours[1].shape == features.shape  # (output, gradient of the map)
    assert roi_kernels.compare(ours, theirs).startswith("same")
    assert roi_kernels.compare((ours[0] + 1,), (theirs[0],)).startswith("differ")


def test_command_and_machine_are_recorded(section):
    assert "`python tools/benchmark.py --sections roi_kernels --quick --reps 3`" in section
    assert "cores" in section and "device cpu" in section


def test_cuda_is_refused():
    with pytest.raises(ValueError, match="CPU kernels"):
        roi_kernels.run_section(device="cuda", quick=True)
