"""The hand-annotated real photos: the fixture matches scikit-image's photos and records how it was made."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data

from tools.benchmarks.real_photos import FIXTURE, load_real_photos, read_fixture


def test_fixture_records_how_it_was_made_and_matches_skimage_photos():
    fixture = read_fixture()
    assert fixture["made_by"] == "hand" and fixture["how"] and fixture["scikit_image"]
    assert "x1, y1, x2, y2" in fixture["box_format"]
    for entry in fixture["photos"]:
        photo = np.asarray(getattr(data, entry["function"])())
        channels = 1 if photo.ndim == 2 else photo.shape[2]
        assert (entry["height"], entry["width"], entry["channels"]) == (*photo.shape[:2], channels)
        assert entry["objects"] and all(o["label"] for o in entry["objects"])


def test_loaded_boxes_lie_inside_their_photos():
    photos = load_real_photos()
    assert {p.name for p in photos} >= {"astronaut", "coffee", "chelsea", "rocket", "coins"}
    assert sum(len(p.boxes) for p in photos) >= 50
    for p in photos:
        height, width = p.image.shape[:2]
        assert p.image.dtype == np.uint8 and p.image.shape[2] == 3
        assert p.boxes.dtype == np.float32 and len(p.boxes) == len(p.labels)
        x1, y1, x2, y2 = p.boxes.T
        assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= width).all() and (y2 <= height).all()
        assert (x2 > x1).all() and (y2 > y1).all()
    coins = next(p for p in photos if p.name == "coins")
    assert coins.labels.count("coin") == 24


def test_a_box_outside_its_photo_or_a_changed_size_is_an_error_naming_the_photo(tmp_path):
    fixture = read_fixture(FIXTURE)
    entry = next(e for e in fixture["photos"] if e["function"] == "chelsea")
    bad = tmp_path / "bad.json"
    entry["objects"][0]["box"] = [0, 0, entry["width"] + 1, 10]
    bad.write_text(json.dumps({**fixture, "photos": [entry]}))
    with pytest.raises(ValueError, match="chelsea: boxes empty or outside"):
        load_real_photos(path=bad)
    entry["objects"][0]["box"] = [0, 0, 10, 10]
    entry["height"] += 1
    bad.write_text(json.dumps({**fixture, "photos": [entry]}))
    with pytest.raises(ValueError, match="chelsea: skimage.data.chelsea"):
        load_real_photos(path=bad)
    with pytest.raises(ValueError, match="no annotated photo"):
        load_real_photos(["hubble_deep_field"])
