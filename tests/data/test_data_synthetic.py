"""Synthetic data: layout, determinism, tight boxes, occlusion rule, object sizes, loadable as COCO."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rcnn.data.coco import CocoDetection
from rcnn.data.imagefolder import ImageFolderDataset
from rcnn.data.synthetic import CATEGORY_NAMES, make_classification_dataset, make_detection_dataset
from rcnn.data.synthetic_render import render_scene
from rcnn.structures import check_target


@pytest.fixture(scope="module")
def detection(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic") / "detection"
    paths = make_detection_dataset(out, num_train=6, num_val=3, image_size=96, seed=1, workers=0)
    return out, paths


def test_detection_layout(detection):
    out, paths = detection
    assert paths == {
        "train_images": str(out / "train"),
        "train_annotations": str(out / "train.json"),
        "val_images": str(out / "val"),
        "val_annotations": str(out / "val.json"),
    }
    assert sorted(p.name for p in (out / "train").iterdir()) == [f"{i:06d}.png" for i in range(1, 7)]
    assert len(list((out / "val").glob("*.png"))) == 3
    data = json.loads((out / "train.json").read_text())
    assert [c["name"] for c in data["categories"]] == list(CATEGORY_NAMES)
    assert len(CATEGORY_NAMES) >= 8
    assert [img["id"] for img in data["images"]] == list(range(1, 7))
    assert all(img["height"] == 96 and img["width"] == 96 for img in data["images"])
    per_image = np.bincount([a["image_id"] for a in data["annotations"]], minlength=7)[1:]
    assert per_image.max() <= 6 and per_image.sum() >= 6


def test_detection_is_deterministic(detection, tmp_path):
    out, _ = detection
    again = make_detection_dataset(tmp_path / "d", num_train=6, num_val=3, image_size=96, seed=1, workers=0)
    assert (out / "train.json").read_bytes() == open(again["train_annotations"], "rb").read()
    assert (out / "val.json").read_bytes() == open(again["val_annotations"], "rb").read()
    assert (out / "train" / "000004.png").read_bytes() == (
        tmp_path / "d" / "train" / "000004.png"
    ).read_bytes()
    other = make_detection_dataset(tmp_path / "e", num_train=6, num_val=0, image_size=96, seed=2, workers=0)
    assert open(other["train_annotations"], "rb").read() != (out / "train.json").read_bytes()


def test_detection_loads_as_coco(detection):
    out, _ = detection
    ds = CocoDetection(out / "train", out / "train.json")
    assert ds.num_classes == len(CATEGORY_NAMES)
    for i in range(len(ds)):
        image, target = ds[i]
        check_target(target, ds.num_classes)
        assert image.shape == (3, 96, 96)


def test_scene_boxes_tight_visible_and_sized():
    sides, categories = [], set()
    for i in range(25):
        rng = np.random.default_rng([7, i])
        image, objects = render_scene(rng, 256, 256, 6, 0.08, 0.6, max_occlusion=0.5)
        assert image.shape == (256, 256, 3) and image.dtype == np.uint8
        assert 1 <= len(objects) <= 6
        for k, obj in enumerate(objects):
            x, y, w, h = obj.box
            assert obj.mask.shape == (h, w)
            # tight: the drawn mask touches all four sides of its box
            assert obj.mask[0].any() and obj.mask[-1].any() and obj.mask[:, 0].any() and obj.mask[:, -1].any()
            assert x >= 0 and y >= 0 and x + w <= 256 and y + h <= 256
            # at least half visible after the later objects are drawn
            hidden = np.zeros((256, 256), bool)
            for later in objects[k + 1 :]:
                hidden[later.window] |= later.mask
            visible = obj.mask & ~hidden[obj.window]
            assert visible.sum() >= 0.5 * obj.mask.sum()
            sides.append(max(w, h))
            categories.add(obj.category)
    assert min(sides) >= 16 and max(sides) <= 0.62 * 256
    assert len(categories) == len(CATEGORY_NAMES)


def test_classification_layout_and_determinism(tmp_path):
    a = make_classification_dataset(tmp_path / "a", 2, 1, image_size=32, seed=3, workers=0)
    make_classification_dataset(tmp_path / "b", 2, 1, image_size=32, seed=3, workers=0)
    assert sorted(p.name for p in (tmp_path / "a" / "train").iterdir()) == sorted(CATEGORY_NAMES)
    for name in CATEGORY_NAMES:
        files = sorted(p.name for p in (tmp_path / "a" / "train" / name).iterdir())
        assert files == ["000000.png", "000001.png"]
        assert len(list((tmp_path / "a" / "val" / name).iterdir())) == 1
        assert (tmp_path / "a" / "train" / name / "000001.png").read_bytes() == (
            tmp_path / "b" / "train" / name / "000001.png"
        ).read_bytes()
    ds = ImageFolderDataset(a["train"])
    assert ds.classes == sorted(CATEGORY_NAMES) and len(ds) == 2 * len(CATEGORY_NAMES)
    assert tuple(ds[0][0].shape) == (3, 32, 32)


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="min_objects"):
        make_detection_dataset(tmp_path, 1, 0, min_objects=3, max_objects=2)
    with pytest.raises(ValueError, match="image_size"):
        make_detection_dataset(tmp_path, 1, 0, image_size=8)
