"""tools/make_synthetic.py: layout of both tasks, task selection, argument errors."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location("make_synthetic_tool", ROOT / "tools" / "make_synthetic.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_synthetic_tool", module)
    spec.loader.exec_module(module)
    return module


def test_both_tasks_layout(tmp_path, capsys):
    args = [
        "--output",
        str(tmp_path),
        "--num-train",
        "3",
        "--num-val",
        "1",
        "--image-size",
        "48",
        "--seed",
        "4",
    ]
    assert _tool().main([*args, "--workers", "0"]) == 0
    det = tmp_path / "detection"
    assert len(list((det / "train").glob("*.png"))) == 3 and len(list((det / "val").glob("*.png"))) == 1
    data = json.loads((det / "train.json").read_text())
    assert len(data["images"]) == 3 and data["images"][0]["width"] == 48 and data["info"]["seed"] == 4
    cls = tmp_path / "classification"
    class_dirs = sorted((cls / "train").iterdir())
    assert len(class_dirs) >= 8
    assert all(len(list(d.glob("*.png"))) == 3 for d in class_dirs)
    assert all(len(list(d.glob("*.png"))) == 1 for d in (cls / "val").iterdir())
    assert "detection" in capsys.readouterr().out


def test_classification_counts_per_class(tmp_path):
    args = ["--output", str(tmp_path), "--task", "classification", "--num-train", "9", "--image-size", "24"]
    assert _tool().main([*args, "--cls-num-train", "2", "--cls-num-val", "1", "--workers", "0"]) == 0
    cls = tmp_path / "classification"
    assert all(len(list(d.glob("*.png"))) == 2 for d in (cls / "train").iterdir())
    assert all(len(list(d.glob("*.png"))) == 1 for d in (cls / "val").iterdir())
    assert not (tmp_path / "detection").exists()


def test_detection_only(tmp_path):
    args = ["--output", str(tmp_path), "--num-train", "2", "--num-val", "0", "--image-size", "32"]
    assert _tool().main([*args, "--task", "detection", "--workers", "0"]) == 0
    assert (tmp_path / "detection" / "train.json").exists()
    assert not (tmp_path / "classification").exists()


@pytest.mark.parametrize(
    "bad", [["--num-train", "-1"], ["--cls-num-val", "-2"], ["--task", "segmentation"], ["--image-size", "4"]]
)
def test_bad_arguments(tmp_path, bad):
    with pytest.raises(SystemExit) as info:
        _tool().main(["--output", str(tmp_path), *bad])
    assert info.value.code == 2
