"""tools/voc_to_coco.py: converts a generated VOC folder; errors give exit code 1 and a message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from helpers.tools import load_tool
from helpers.voc_fixtures import write_voc

tool = load_tool("voc_to_coco")


def _make_voc(root: Path) -> Path:
    image = np.zeros((10, 12, 3), np.uint8)
    return write_voc(root, {"a": (image, [("boat", 0, (2, 3, 12, 10))])}, {"train": ["a"]}, ext=".png")


def test_tool_writes_coco_json(tmp_path, capsys):
    root = _make_voc(tmp_path / "VOC")
    out = tmp_path / "out" / "train.json"
    assert tool.main([str(root), "--split", "train", "--output", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["images"][0]["file_name"] == "a.png"
    assert data["annotations"][0]["bbox"] == [1.0, 2.0, 11.0, 8.0]
    assert data["annotations"][0]["category_id"] == 4  # boat
    assert "1 images, 1 objects" in capsys.readouterr().out


def test_tool_custom_classes(tmp_path):
    root = _make_voc(tmp_path / "VOC")
    out = tmp_path / "c.json"
    assert tool.main([str(root), "--split", "train", "--output", str(out), "--classes", "car,boat"]) == 0
    data = json.loads(out.read_text())
    assert [c["name"] for c in data["categories"]] == ["car", "boat"]
    assert data["annotations"][0]["category_id"] == 2


def test_tool_reports_errors(tmp_path, capsys):
    root = _make_voc(tmp_path / "VOC")
    out = tmp_path / "x.json"
    assert tool.main([str(root), "--split", "val", "--output", str(out)]) == 2
    assert "val.txt" in capsys.readouterr().err
    assert not out.exists()
