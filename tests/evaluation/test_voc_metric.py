"""The VOC metric against a literal transcription of the devkit's algorithm on generated cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers.voc_reference import reference_voc_ap

from rcnn.evaluation.voc import class_ap, evaluate_voc


def generated_case(seed: int):
    """Ground truth with difficult boxes, and detections with duplicates, near misses, tied scores and
    boxes on images without ground truth."""
    rng = np.random.default_rng(seed)
    gt, dets = {}, []
    for image in range(int(rng.integers(1, 6))):
        objs = []
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.uniform(0, 80, 2)
            w, h = rng.uniform(5, 40, 2)
            objs.append((x, y, x + w, y + h, bool(rng.random() < 0.25)))
        gt[image] = objs
        for o in objs:
            for _ in range(int(rng.integers(0, 3))):  # 0, 1 or 2 (a duplicate) detections per object
                jitter = rng.normal(0, 3, 4)
                box = tuple(float(v) for v in np.asarray(o[:4]) + jitter)
                box = (min(box[0], box[2] - 1), min(box[1], box[3] - 1), box[2], box[3])
                dets.append((image, round(float(rng.random()), 1), box))  # one decimal: many ties
    for _ in range(int(rng.integers(0, 5))):  # false detections, also on an image without ground truth
        x, y = rng.uniform(0, 80, 2)
        dets.append((int(rng.integers(0, 7)), round(float(rng.random()), 1), (x, y, x + 20.0, y + 20.0)))
    return gt, dets


def ours(gt, dets, metric):
    ground_truth = {
        i: (
            np.asarray([o[:4] for o in objs], np.float64).reshape(-1, 4),
            np.asarray([o[4] for o in objs], bool),
        )
        for i, objs in gt.items()
    }
    return class_ap(ground_truth, dets, metric)


@pytest.mark.parametrize("metric", ["voc07", "voc"])
def test_matches_the_devkit_reference_on_generated_cases(metric):
    compared = 0
    for seed in range(150):
        gt, dets = generated_case(seed)
        expected = reference_voc_ap(gt, dets, use_07_metric=metric == "voc07")
        got = ours(gt, dets, metric)
        if math.isnan(expected):
            assert got == -1.0  # no non-difficult ground truth: n/a
        else:
            assert got == pytest.approx(expected, abs=1e-12), seed
            compared += 1
    assert compared > 100


def test_hand_cases_duplicates_difficult_and_the_two_interpolations():
    gt = {0: [(0, 0, 10, 10, False), (20, 20, 30, 30, True)]}
    # a hit, its duplicate (false positive), a detection on the difficult box (ignored)
    dets = [(0, 0.9, (0, 0, 10, 10)), (0, 0.8, (0, 0, 10, 10)), (0, 0.7, (20, 20, 30, 30))]
    assert ours(gt, dets, "voc07") == pytest.approx(1.0)
    # a false positive first, then the hit: precision 0.5 at recall 1
    dets = [(0, 0.9, (50, 50, 60, 60)), (0, 0.8, (0, 0, 10, 10))]
    assert ours(gt, dets, "voc") == pytest.approx(0.5)
    assert ours(gt, dets, "voc07") == pytest.approx(0.5)
    # two objects, only one found first: voc07 = (6 * 1 + 5 * 0) / 11 for recall 0.5 at precision 1
    gt2 = {0: [(0, 0, 10, 10, False), (40, 40, 50, 50, False)]}
    assert ours(gt2, [(0, 0.9, (0, 0, 10, 10))], "voc07") == pytest.approx(6 / 11)
    assert ours(gt2, [(0, 0.9, (0, 0, 10, 10))], "voc") == pytest.approx(0.5)


def test_evaluate_voc_on_coco_dicts_skips_classes_without_ground_truth():
    dataset = {
        "images": [{"id": 1}, {"id": 2}],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 0},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "iscrowd": 1, "difficult": 1},
        ],
    }
    results = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.95},  # on the difficult one
        {"image_id": 2, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.5},  # class b: no gt
    ]
    out = evaluate_voc(dataset, results, "voc")
    assert out["per_category"] == {"a": pytest.approx(1.0), "b": -1.0}
    assert out["mAP"] == pytest.approx(1.0)
