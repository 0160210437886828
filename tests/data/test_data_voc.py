"""Pascal VOC XML -> COCO dict: coordinates, difficult objects, loadable by CocoDetection, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.voc_fixtures import voc_xml, write_voc

from rcnn.data.coco import CocoDetection
from rcnn.data.errors import DatasetError
from rcnn.data.voc import VOC_CLASSES, voc_to_coco


def make_voc(root: Path) -> Path:
    """Two images: 000001 (30x40 HxW, a dog and a difficult cat), 000002 (20x20, no <size>, a person)."""
    dog_and_cat = [("dog", 0, (1, 1, 10, 20)), ("cat", 1, (5, 6, 40, 30))]
    images = {
        "000001": (np.full((30, 40, 3), 128, np.uint8), dog_and_cat),
        "000002": (np.full((20, 20, 3), 64, np.uint8), [("person", 0, (2, 3, 12, 13))]),
    }
    splits = {"trainval": ["000001", "000002"], "test": ["000002"]}
    return write_voc(root, images, splits, without_size=["000002"])


def test_voc_to_coco_coordinates_and_difficult(tmp_path):
    data = voc_to_coco(make_voc(tmp_path / "VOC"), "trainval")
    assert [c["name"] for c in data["categories"]] == list(VOC_CLASSES)
    assert [c["id"] for c in data["categories"]] == list(range(1, 21))
    assert data["images"] == [
        {"id": 1, "file_name": "000001.jpg", "height": 30, "width": 40, "voc_id": "000001"},
        {
            "id": 2,
            "file_name": "000002.jpg",
            "height": 20,
            "width": 20,
            "voc_id": "000002",
        },  # size read from jpg
    ]
    dog, cat, person = data["annotations"]
    # 1-based inclusive [1, 1, 10, 20] -> x=0, y=0, w=10, h=20
    assert dog["bbox"] == [0.0, 0.0, 10.0, 20.0] and dog["category_id"] == VOC_CLASSES.index("dog") + 1
    assert dog["iscrowd"] == 0 and dog["area"] == 200.0
    assert cat["bbox"] == [4.0, 5.0, 36.0, 25.0] and cat["iscrowd"] == 1 and cat["difficult"] == 1
    assert person["image_id"] == 2 and person["bbox"] == [1.0, 2.0, 11.0, 11.0]


def test_difficult_modes(tmp_path):
    root = make_voc(tmp_path / "VOC")
    assert len(voc_to_coco(root, difficult="drop")["annotations"]) == 2
    kept = voc_to_coco(root, difficult="keep")["annotations"]
    assert [a["iscrowd"] for a in kept] == [0, 0, 0] and [a["difficult"] for a in kept] == [0, 1, 0]


def test_converted_set_loads_in_coco_detection(tmp_path):
    import json

    root = make_voc(tmp_path / "VOC")
    ann = tmp_path / "voc.json"
    ann.write_text(json.dumps(voc_to_coco(root, "trainval")))
    ds = CocoDetection(root / "JPEGImages", ann)
    _, target = ds[0]
    torch.testing.assert_close(target["boxes"], torch.tensor([[0.0, 0, 10, 20]]))  # difficult cat dropped
    assert ds.class_names[target["labels"][0] - 1] == "dog"


def test_custom_classes_and_unknown_class(tmp_path):
    root = make_voc(tmp_path / "VOC")
    data = voc_to_coco(root, "test", class_names=["person"])
    assert data["categories"] == [{"id": 1, "name": "person", "supercategory": "voc"}]
    with pytest.raises(DatasetError, match=r"000001\.xml.*image id=000001.*unknown class 'dog'"):
        voc_to_coco(root, "trainval", class_names=["person"])


def test_bad_voc_input(tmp_path):
    root = make_voc(tmp_path / "VOC")
    with pytest.raises(DatasetError, match=r"val\.txt.*not found"):
        voc_to_coco(root, "val")
    (root / "Annotations" / "000002.xml").write_text("<annotation><object>")
    with pytest.raises(DatasetError, match=r"000002\.xml.*image id=000002.*XML"):
        voc_to_coco(root, "test")
    (root / "Annotations" / "000002.xml").write_text(
        voc_xml("000002.jpg", (20, 20), [("person", 0, (5, 5, 3, 9))])
    )
    with pytest.raises(DatasetError, match=r"000002\.xml.*empty box"):
        voc_to_coco(root, "test")
    (root / "Annotations" / "000002.xml").unlink()
    with pytest.raises(DatasetError, match=r"000002\.xml.*not found"):
        voc_to_coco(root, "test")
