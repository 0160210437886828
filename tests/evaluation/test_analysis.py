"""Confusion matrix and worst images against hand-counted cases; the evaluation report's pictures."""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
from pycocotools.coco import COCO

from rcnn.evaluation.analysis import confusion_matrix, image_errors
from rcnn.evaluation.report import write_evaluation_report

CATS = [{"id": 1, "name": "star"}, {"id": 2, "name": "cross"}]


def dataset():
    anns = [  # image 1: a star and a cross; image 2: a star and a crowd cross; image 3: nothing
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 20, 10, 10], "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0},
        {"id": 4, "image_id": 2, "category_id": 2, "bbox": [30, 30, 10, 10], "iscrowd": 1},
    ]
    images = [{"id": i, "file_name": f"{i}.png", "height": 48, "width": 64} for i in (1, 2, 3)]
    return {"images": images, "annotations": anns, "categories": CATS}


RESULTS = [
    {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},  # star as star
    {"image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 10], "score": 0.8},  # the cross called a star
    {"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.3},  # under the threshold
    {"image_id": 2, "category_id": 2, "bbox": [30, 30, 10, 10], "score": 0.9},  # on the crowd: ignored
    {"image_id": 3, "category_id": 2, "bbox": [5, 5, 10, 10], "score": 0.6},  # a false detection
    {"image_id": 2, "category_id": 1, "bbox": [1, 0, 10, 10], "score": 0.7},  # star as star (IoU 0.82)
    {"image_id": 2, "category_id": 1, "bbox": [0, 1, 10, 10], "score": 0.6},  # its duplicate: background
]


def test_confusion_matrix_counts_by_hand():
    m = confusion_matrix(dataset(), RESULTS, score_threshold=0.5)
    assert m["classes"] == ["star", "cross", "background"]
    # rows: true star, true cross, background; columns: predicted star, cross, background (missed)
    assert m["counts"] == [[2, 0, 0], [1, 0, 0], [1, 1, 0]]
    assert m["normalized"][0] == [1.0, 0.0, 0.0] and m["normalized"][2] == [0.5, 0.5, 0.0]
    # a higher threshold: the 0.6 duplicate and false detection go, and the 0.7 star
    m = confusion_matrix(dataset(), RESULTS, score_threshold=0.75)
    assert m["counts"] == [[1, 0, 1], [1, 0, 0], [0, 0, 0]]


def test_worst_images_by_hand():
    rows = image_errors(dataset(), RESULTS, score_threshold=0.5)
    # image 1: the cross called a star is a false positive and the cross is missed: 2 errors;
    # image 2: the duplicate (1); image 3: the false detection (1)
    assert [(r["image_id"], r["false_positives"], r["missed"]) for r in rows] == [
        (1, 1, 1),
        (2, 1, 0),
        (3, 1, 0),
    ]


def test_report_writes_every_picture(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i in (1, 2, 3):
        cv2.imwrite(str(images / f"{i}.png"), np.full((48, 64, 3), 90, np.uint8))
    coco = COCO()
    coco.dataset = dataset()
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    out = tmp_path / "eval"
    metrics = write_evaluation_report(
        coco, RESULTS, out, metric="voc07", worst_n=2, images_dir=str(images), show_dir=str(tmp_path / "show")
    )
    assert metrics["metric"] == "voc07" and set(metrics["per_category"]) == {"star", "cross"}
    assert cv2.imread(str(out / "pr_curves.png")).shape == (500, 1200, 3)
    assert cv2.imread(str(out / "confusion_matrix.png")).shape == (500, 600, 3)
    assert json.loads((out / "confusion_matrix.json").read_text())["counts"][0] == [2, 0, 0]
    worst = json.loads((out / "worst.json").read_text())
    assert [w["image_id"] for w in worst] == [1, 2]
    assert sorted(p.name for p in (out / "worst").iterdir()) == ["1.png", "2.png"]
    shown = sorted((tmp_path / "show").iterdir())
    assert [p.name for p in shown] == ["1.png", "2.png", "3.png"]
    assert cv2.imread(str(shown[0])).shape == (48, 64, 3) and cv2.imread(str(shown[0])).std() > 0
