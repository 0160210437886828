"""tools/make_synthetic.py: layout of both tasks, task selection, argument errors."""

from __future__ import annotations

import json

import cv2
import pytest
from helpers.tools import load_tool

tool = load_tool("make_synthetic")


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
    assert tool.main([*args, "--workers", "0"]) == 0
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


def test_both_tasks_with_a_classification_size_of_its_own(tmp_path):
    args = ["--output", str(tmp_path), "--num-train", "1", "--num-val", "0", "--image-size", "48"]
    assert tool.main([*args, "--cls-image-size", "24", "--cls-num-val", "0", "--workers", "0"]) == 0
    detection = json.loads((tmp_path / "detection" / "train.json").read_text())
    assert detection["images"][0]["width"] == 48
    image = next((tmp_path / "classification" / "train").glob("*/*.png"))
    assert cv2.imread(str(image)).shape == (24, 24, 3)


def test_classification_counts_per_class(tmp_path):
    args = ["--output", str(tmp_path), "--task", "classification", "--num-train", "9", "--image-size", "24"]
    assert tool.main([*args, "--cls-num-train", "2", "--cls-num-val", "1", "--workers", "0"]) == 0
    cls = tmp_path / "classification"
    assert all(len(list(d.glob("*.png"))) == 2 for d in (cls / "train").iterdir())
    assert all(len(list(d.glob("*.png"))) == 1 for d in (cls / "val").iterdir())
    assert not (tmp_path / "detection").exists()


def test_detection_only(tmp_path):
    args = ["--output", str(tmp_path), "--num-train", "2", "--num-val", "0", "--image-size", "32"]
    assert tool.main([*args, "--task", "detection", "--workers", "0"]) == 0
    assert (tmp_path / "detection" / "train.json").exists()
    assert not (tmp_path / "classification").exists()


@pytest.mark.parametrize(
    "bad",
    [
        ["--num-train", "-1"],
        ["--cls-num-val", "-2"],
        ["--task", "segmentation"],
        ["--image-size", "4"],
        ["--cls-image-size", "8"],
    ],
)
def test_bad_arguments(tmp_path, bad):
    with pytest.raises(SystemExit) as info:
        tool.main(["--output", str(tmp_path), *bad])
    assert info.value.code == 2
