"""tools/voc_to_coco.py: converts a generated VOC folder; errors give exit code 1 and a message."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from helpers.tools import load_tool

tool = load_tool("voc_to_coco")


def _make_voc(root: Path) -> Path:
    for sub in ("Annotations", "ImageSets/Main", "JPEGImages"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / "JPEGImages" / "a.png"), np.zeros((10, 12, 3), np.uint8))
    (root / "Annotations" / "a.xml").write_text(
        "<annotation><filename>a.png</filename><size><width>12</width><height>10</height></size>"
        "<object><name>boat</name><difficult>0</difficult>"
        "<bndbox><xmin>2</xmin><ymin>3</ymin><xmax>12</xmax><ymax>10</ymax></bndbox></object></annotation>"
    )
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\n")
    return root


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
