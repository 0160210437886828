"""Bad input raises DatasetError naming the file and the image/annotation id; skip_invalid skips it."""

from __future__ import annotations

import json
import logging
import re

import pytest
from helpers.data_fixtures import make_coco

from rcnn.data.coco import CocoDetection
from rcnn.data.errors import DatasetError

IMAGES = [{"id": 5, "file_name": "a.png", "height": 40, "width": 60}]


def _ann(**kw):
    ann = {"id": 21, "image_id": 5, "category_id": 3, "bbox": [1, 2, 10, 10]}
    ann.update(kw)
    return ann


def _expect(tmp_path, match_parts, **make):
    images_dir, ann_file = make_coco(tmp_path, images=make.pop("images", IMAGES), **make)
    with pytest.raises(DatasetError) as info:
        CocoDetection(images_dir, ann_file)
    message = str(info.value)
    assert str(ann_file) in message
    for part in match_parts:
        assert re.search(part, message), (part, message)
    return info.value


# ----------------------------------------------------------------------------------------- load time


def test_corrupt_image_names_file_and_id(tmp_path):
    images_dir, ann_file = make_coco(tmp_path, images=IMAGES, annotations=[_ann()])
    (images_dir / "a.png").write_bytes(b"\x89PNG garbage")
    ds = CocoDetection(images_dir, ann_file)
    with pytest.raises(DatasetError, match=r"a\.png.*image id=5.*cannot decode"):
        ds[0]


def test_empty_image_file(tmp_path):
    images_dir, ann_file = make_coco(tmp_path, images=IMAGES, annotations=[_ann()])
    (images_dir / "a.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"a\.png.*image id=5"):
        CocoDetection(images_dir, ann_file)[0]


def test_missing_image_file(tmp_path):
    images_dir, ann_file = make_coco(tmp_path, images=IMAGES, annotations=[_ann()], write_images=False)
    ds = CocoDetection(images_dir, ann_file)
    with pytest.raises(DatasetError, match=r"a\.png.*image id=5.*not found"):
        ds[0]


def test_image_size_differs_from_json(tmp_path):
    images = [{"id": 5, "file_name": "a.png", "height": 40, "width": 60}]
    images_dir, ann_file = make_coco(tmp_path, images=images, annotations=[_ann()])
    data = json.loads(ann_file.read_text())
    data["images"][0]["width"] = 61
    ann_file.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"a\.png.*image id=5.*60x40.*61x40"):
        CocoDetection(images_dir, ann_file)[0]


def test_skip_invalid_replaces_unreadable_image_with_next(tmp_path, caplog):
    images = IMAGES + [{"id": 6, "file_name": "b.png", "height": 20, "width": 20}]
    anns = [_ann(), _ann(id=22, image_id=6)]
    images_dir, ann_file = make_coco(tmp_path, images=images, annotations=anns)
    (images_dir / "a.png").write_bytes(b"broken")
    ds = CocoDetection(images_dir, ann_file, skip_invalid=True)
    with caplog.at_level(logging.WARNING):
        _, target = ds[0]
        _, again = ds[0]
    assert target["image_id"] == 6 and again["image_id"] == 6
    warnings = [r for r in caplog.records if "a.png" in r.getMessage()]
    assert len(warnings) == 1 and "image id=5" in warnings[0].getMessage()


def test_skip_invalid_all_images_unreadable(tmp_path):
    images_dir, ann_file = make_coco(tmp_path, images=IMAGES, annotations=[_ann()], write_images=False)
    with pytest.raises(DatasetError, match="no readable image"):
        CocoDetection(images_dir, ann_file, skip_invalid=True)[0]


# ------------------------------------------------------------------------------------ annotation file


def test_unknown_image_id(tmp_path):
    _expect(tmp_path, [r"image id=99", r"annotation id=21", "unknown image"], annotations=[_ann(image_id=99)])


def test_unknown_category_id(tmp_path):
    err = _expect(tmp_path, [r"image id=5", r"annotation id=21", "unknown category id 4"],
                  annotations=[_ann(category_id=4)])  # fmt: skip
    assert err.annotation_id == 21 and err.image_id == 5


@pytest.mark.parametrize("bbox", [[1, 2, 0, 10], [1, 2, 10, -3]])
def test_non_positive_box(tmp_path, bbox):
    _expect(tmp_path, [r"annotation id=21", "non-positive width or height"], annotations=[_ann(bbox=bbox)])


def test_nan_box(tmp_path):
    _expect(tmp_path, [r"annotation id=21", "NaN"], annotations=[_ann(bbox=[1, float("nan"), 10, 10])])


def test_malformed_box(tmp_path):
    _expect(tmp_path, [r"annotation id=21", "bbox"], annotations=[_ann(bbox=[1, 2, 3])])


@pytest.mark.parametrize("bbox", [[55, 2, 10, 10], [-3, 2, 10, 10], [1, 35, 10, 10]])
def test_box_outside_image(tmp_path, bbox):
    _expect(
        tmp_path, [r"image id=5", r"annotation id=21", "outside the 60x40"], annotations=[_ann(bbox=bbox)]
    )


def test_box_slightly_outside_is_clipped(tmp_path):
    images_dir, ann_file = make_coco(tmp_path, images=IMAGES, annotations=[_ann(bbox=[-0.5, 0, 60.9, 40.4])])
    _, target = CocoDetection(images_dir, ann_file)[0]
    assert target["boxes"].tolist() == [[0.0, 0.0, 60.0, 40.0]]


def test_bad_image_record(tmp_path):
    images = [{"id": 5, "file_name": "a.png", "height": 0, "width": 60}]
    _expect(tmp_path, [r"image id=5", "height"], images=images, annotations=[], write_images=False)


def test_duplicate_annotation_id(tmp_path):
    _expect(tmp_path, [r"annotation id=21", "duplicate"], annotations=[_ann(), _ann()])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not a JSON file"),
        ("[1, 2]", "top level is a list"),
        (json.dumps({"images": [], "categories": []}), "missing key 'annotations'"),
        (json.dumps({"annotations": [], "categories": []}), "missing key 'images'"),
        (json.dumps({"images": {}, "annotations": [], "categories": []}), "'images' must be a list"),
    ],
)
def test_not_a_coco_file(tmp_path, content, match):
    (tmp_path / "images").mkdir()
    ann_file = tmp_path / "ann.json"
    ann_file.write_text(content)
    with pytest.raises(DatasetError, match=match) as info:
        CocoDetection(tmp_path / "images", ann_file)
    assert str(ann_file) in str(info.value)


def test_missing_annotation_file_and_images_dir(tmp_path):
    images_dir, ann_file = make_coco(tmp_path)
    with pytest.raises(DatasetError, match=r"nope\.json.*not found"):
        CocoDetection(images_dir, tmp_path / "nope.json")
    with pytest.raises(DatasetError, match=r"nodir.*not found"):
        CocoDetection(tmp_path / "nodir", ann_file)


def test_skip_invalid_drops_bad_records_with_one_warning_each(tmp_path, caplog):
    anns = [
        _ann(),
        _ann(id=22, image_id=99),
        _ann(id=23, bbox=[1, 2, 0, 5]),
        _ann(id=24, category_id=4),
        _ann(id=25, bbox=[2, 3, 4, 5]),
    ]
    images_dir, ann_file = make_coco(tmp_path, images=IMAGES, annotations=anns)
    with caplog.at_level(logging.WARNING):
        ds = CocoDetection(images_dir, ann_file, skip_invalid=True)
    messages = [r.getMessage() for r in caplog.records]
    for aid in (22, 23, 24):
        assert sum(f"annotation id={aid}" in m for m in messages) == 1
    assert any(re.search(rf"skipped 3 invalid annotations.*{re.escape(str(ann_file))}", m) for m in messages)
    _, target = ds[0]
    assert target["boxes"].tolist() == [[1.0, 2.0, 11.0, 12.0], [2.0, 3.0, 6.0, 8.0]]
    assert sorted(ds.coco.anns) == [21, 25]
