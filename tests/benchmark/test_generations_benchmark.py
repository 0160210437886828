"""tools.benchmarks.generations: the quick section, run for real through ``tools/benchmark.py``, writes its
table between the section's markers with one row per generation and numbers that parse (AP in [0, 1],
positive times; no assertion on accuracy or speed); every override it passes is a real config key."""

from __future__ import annotations

import json
import math
import os

import pytest
from helpers.benchmark_tables import table_rows

from tools.benchmarks import generations


def _number(cell: str) -> float:
    value = float(cell.replace("**", ""))
    assert math.isfinite(value), cell
    return value


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, load_tool) -> dict:
    """``python tools/benchmark.py --sections generations --quick --output TMP.md`` (in this process), the
    runs kept in a work folder."""
    tool = load_tool("benchmark")
    root = tmp_path_factory.mktemp("generations")
    output, work = root / "bench.md", root / "work"
    argv = ["--sections", "generations", "--quick", "--output", str(output), "--work-dir", str(work)]
    assert tool.main(argv) == 0
    return {"text": output.read_text(encoding="utf-8"), "work": str(work)}


def test_the_section_is_written_between_its_markers(quick_run):
    text = quick_run["text"]
    assert text.count("<!-- benchmark:generations -->") == 1
    assert text.count("<!-- /benchmark:generations -->") == 1
    body = text.split("<!-- benchmark:generations -->\n")[1].split("<!-- /benchmark:generations -->")[0]
    assert body.startswith("## The three generations side by side: R-CNN, Fast R-CNN, Faster R-CNN\n")
    assert "| detector | proposals | COCO AP | AP50 |" in body


def test_one_row_per_generation_with_numbers(quick_run):
    rows = table_rows(quick_run["text"], "| detector | proposals |")
    assert [row[0] for row in rows] == ["R-CNN", "Fast R-CNN", "Faster R-CNN"]
    for row, g in zip(rows, generations.GENERATIONS):
        name, proposals, ap, ap50, ss_train, training, ss_test, detector, total = row
        assert 0.0 <= _number(ap) <= 1.0 and 0.0 <= _number(ap50) <= 1.0, row
        assert _number(ap) <= _number(ap50) + 1e-3, row
        assert _number(training) > 0 and _number(detector) > 0, row
        if g.selective_search:
            assert proposals == "selective search"
            assert _number(ss_train) > 0 and _number(ss_test) > 0, row
            assert _number(total) >= max(_number(ss_test), _number(detector)) - 2e-3, row  # median of sums
        else:
            assert (proposals, ss_train, ss_test) == ("RPN", "-", "-")
            assert _number(total) == _number(detector)
        # the AP columns are the metrics.json of the training run
        with open(os.path.join(quick_run["work"], g.key, "metrics.json"), encoding="utf-8") as f:
            metrics = json.load(f)
        assert _number(ap) == pytest.approx(metrics["AP"], abs=5e-4)
        assert _number(ap50) == pytest.approx(metrics["AP50"], abs=5e-4)


def test_commands_and_machine_are_recorded(quick_run):
    text, work = quick_run["text"], quick_run["work"]
    assert "`python tools/benchmark.py --sections generations --quick`" in text
    assert "cores" in text and "device cpu" in text
    commands = [line for line in text.splitlines() if line.startswith("python tools/")]
    tools = [line.split()[1] for line in commands]
    assert tools == [
        "tools/make_synthetic.py", "tools/train_classifier.py", "tools/compute_proposals.py",
        "tools/compute_proposals.py", "tools/train_detector.py", "tools/train_detector.py",
        "tools/train_detector.py",
    ]  # fmt: skip
    for g in generations.GENERATIONS:
        assert any(
            f"--config {g.config}" in line and "WORK/classifier/model_final.pth" in line for line in commands
        )
    assert work not in text  # the temporary folder is written as WORK


def test_every_override_is_a_config_key():
    """The quick and full overrides load with the configs as they are (a misspelt key is an error)."""
    for detectors in (generations.QUICK_DETECTORS, generations.FULL_DETECTORS):
        for g in generations.GENERATIONS:
            proposals = ["data.train_proposals=P/train", "data.val_proposals=P/val"]
            overrides = [*generations.data_overrides("DATA"), *proposals, "solver.device=cpu"]
            generations.check_overrides(g.config, [*overrides, *detectors[g.key]])
    for classifier in (generations.QUICK_CLASSIFIER, generations.FULL_CLASSIFIER):
        generations.check_overrides(generations.CLASSIFIER_CONFIG, classifier, classification=True)


def test_cuda_without_cuda_is_refused_before_any_step(monkeypatch, tmp_path):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        generations.run_section(device="cuda", quick=True, work_dir=str(tmp_path / "work"))
    assert not (tmp_path / "work").exists()


def test_a_work_folder_with_earlier_runs_is_refused(tmp_path):
    """The tools would resume from earlier runs (cached proposals, finished R-CNN stages): refused before
    any step, so every time in the table is of a whole run."""
    (tmp_path / "proposals").mkdir()
    with pytest.raises(RuntimeError, match="already holds proposals"):
        generations.run_section(quick=True, work_dir=str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proposals"]
