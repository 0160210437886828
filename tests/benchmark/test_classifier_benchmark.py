"""tools.benchmarks.classifier: the quick section has its tables, one row per case, and numbers that parse
(no assertion on speed)."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.benchmark_tables import table_rows

from tools.benchmarks import classifier


def _number(cell: str) -> float:
    return float(cell.replace("**", "").rstrip("%"))


@pytest.fixture
def tiny_cases(monkeypatch):
    monkeypatch.setattr(classifier, "QUICK_CASES", (classifier.Case("resnet18", 32, 2),))
    monkeypatch.setattr(
        classifier, "QUICK_DATA_CASES", (classifier.DataCase("resnet18", 36, 32, 2, 1, 3, 40),)
    )


def test_run_section_quick(tiny_cases):
    threads = torch.get_num_threads()
    text = classifier.run_section(quick=True, reps=2)
    assert torch.get_num_threads() == threads  # restored
    assert text.startswith("## Classifier training: ours vs a plain torchvision loop\n")
    rows = table_rows(text, "| network | input |")
    assert len(rows) == len(classifier.QUICK_CASES)
    for row, case in zip(rows, classifier.QUICK_CASES):
        assert row[:3] == [case.name, f"{case.size}x{case.size}", str(case.batch)]
        for cell in row[3:]:  # images/s both, ratio, CPU-time ratio
            value = _number(cell)
            assert math.isfinite(value) and value > 0, row
    data_rows = table_rows(text, "| network | crop |")
    assert len(data_rows) == len(classifier.QUICK_DATA_CASES)
    for row, case in zip(data_rows, classifier.QUICK_DATA_CASES):
        assert row[0] == case.name and row[2] == str(case.batch) and int(row[4]) >= case.iterations
        assert _number(row[5]) > 0 and math.isfinite(_number(row[5]))  # images/s
        for cell in row[6:]:  # shares of time waiting for data, in percent
            assert 0 <= _number(cell) <= 100, row
    assert "python tools/benchmark.py --sections classifier --quick --reps 2" in text
    assert "torch " + torch.__version__ in text and "cores" in text and "device cpu" in text


def test_main_prints_the_section(monkeypatch, capsys):
    calls = []

    def fake_run_section(**kwargs):
        calls.append(kwargs)
        return "## Classifier training: ours vs a plain torchvision loop\n"

    monkeypatch.setattr(classifier, "run_section", fake_run_section)
    classifier.main(["--quick"])
    assert calls == [{"device": "cpu", "quick": True, "threads": 1, "reps": None}]
    assert capsys.readouterr().out.startswith("## Classifier training: ours vs a plain torchvision loop")


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as the benchmark runs; far quicker than 2 threads on a shared machine
    yield
    torch.set_num_threads(previous)


def test_our_step_trains_like_the_plain_loop(one_thread):
    """From the same weights and batch, one step of each moves the weights the same way (same loss, lr,
    momentum and weight decay): the two loops time the same work."""
    case = classifier.Case("resnet18", 32, 2)
    ours, plain = classifier.build_models(case.name, "cpu")
    images, targets = classifier.make_batch(case, "cpu")
    classifier.make_our_step(ours, images, targets)()
    classifier.make_plain_step(plain, images, targets)()
    for (name, a), (_, b) in zip(ours.named_parameters(), plain.named_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
