"""COCOEvaluator, results files and the metrics table, on a tiny generated ground truth."""

import json

import numpy as np
import pytest
import torch

from rcnn.evaluation.coco import (
    METRIC_NAMES,
    COCOEvaluator,
    evaluate_results_file,
    format_table,
    load_coco,
    load_results_file,
)

CATEGORIES = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}, {"id": 12, "name": "bird"}]
LABEL_TO_CATEGORY = {1: 3, 2: 7, 3: 12}
CATEGORY_TO_LABEL = {c: k for k, c in LABEL_TO_CATEGORY.items()}
# image id -> [(category id, [x, y, w, h])]: small (< 32^2), medium and large objects
OBJECTS = {
    10: [(3, [10, 10, 20, 20]), (7, [50, 40, 80, 60]), (12, [150, 20, 150, 160])],
    20: [(7, [5, 5, 25, 25]), (7, [100, 100, 60, 70])],
    30: [(3, [20, 30, 110, 120]), (12, [200, 200, 30, 20])],
    40: [],  # an image without objects
}


def write_gt(tmp_path, with_area: bool = True):
    images = [{"id": i, "file_name": f"{i}.jpg", "height": 400, "width": 420} for i in OBJECTS]
    annotations = []
    for image_id, objects in OBJECTS.items():
        for category_id, bbox in objects:
            ann = {"id": len(annotations) + 1, "image_id": image_id, "category_id": category_id, "bbox": bbox}
            if with_area:
                ann.update(area=bbox[2] * bbox[3], iscrowd=0)
            annotations.append(ann)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return path


@pytest.fixture
def gt_path(tmp_path):
    return write_gt(tmp_path)


def detections_for(image_id, shift=0.0, score=0.9, labels=True):
    """The ground truth of one image as detections (xyxy, contiguous labels), shifted right by a fraction
    of each box's width."""
    boxes, label_list = [], []
    for category_id, (x, y, w, h) in OBJECTS[image_id]:
        boxes.append([x + shift * w, y, x + shift * w + w, y + h])
        label_list.append(CATEGORY_TO_LABEL[category_id] if labels else category_id)
    return {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "scores": torch.full((len(boxes),), score),
        "labels": torch.tensor(label_list, dtype=torch.int64),
    }


def full_evaluator(gt, shift=0.0):
    evaluator = COCOEvaluator(gt, LABEL_TO_CATEGORY)
    for image_id in OBJECTS:
        evaluator.add(image_id, detections_for(image_id, shift))
    return evaluator


def test_perfect_predictions_give_ap_one(gt_path):
    metrics = full_evaluator(gt_path).evaluate()
    assert set(metrics) == {*METRIC_NAMES, "per_category"}
    for name in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100"):
        assert metrics[name] == pytest.approx(1.0), name
    assert metrics["per_category"] == pytest.approx({"cat": 1.0, "dog": 1.0, "bird": 1.0})
    assert all(isinstance(v, float) for k, v in metrics.items() if k != "per_category")


def test_shifted_boxes_give_lower_ap(gt_path):
    perfect = full_evaluator(gt_path).evaluate()
    # a shift of 20% of the width gives IoU 0.8 / 1.2 = 0.67: right at IoU 0.5, wrong at 0.75
    shifted = full_evaluator(gt_path, shift=0.2).evaluate()
    assert shifted["AP50"] == pytest.approx(1.0)
    assert shifted["AP75"] == pytest.approx(0.0)
    assert shifted["AP"] == pytest.approx(0.4)  # right at 4 of the 10 IoU thresholds 0.50, 0.55, ..., 0.95
    assert shifted["AP"] < perfect["AP"]
    far = full_evaluator(gt_path, shift=1.5).evaluate()  # no overlap at all
    assert far["AP"] == pytest.approx(0.0) and far["AP50"] == pytest.approx(0.0)


def test_a_wrong_class_is_a_miss(gt_path):
    evaluator = COCOEvaluator(gt_path, LABEL_TO_CATEGORY)
    for image_id in OBJECTS:
        dets = detections_for(image_id)
        if image_id == 10:
            dets["labels"][0] = CATEGORY_TO_LABEL[7]  # the cat called a dog
        evaluator.add(image_id, dets)
    metrics = evaluator.evaluate()
    assert metrics["per_category"]["dog"] < 1.0 and metrics["per_category"]["cat"] < 1.0
    assert metrics["per_category"]["bird"] == pytest.approx(1.0)


def test_no_predictions_give_zero_with_a_warning(gt_path):
    evaluator = COCOEvaluator(str(gt_path), LABEL_TO_CATEGORY)
    for image_id in OBJECTS:
        evaluator.add(image_id, {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": []})
    with pytest.warns(RuntimeWarning, match="no detections"):
        metrics = evaluator.evaluate()
    assert metrics["AP"] == 0.0 and metrics["AP50"] == 0.0 and metrics["AR100"] == 0.0
    assert metrics["per_category"] == {"cat": 0.0, "dog": 0.0, "bird": 0.0}
    with pytest.warns(RuntimeWarning, match="no detections"):
        assert COCOEvaluator(gt_path).evaluate()["AP"] == 0.0  # nothing added at all


def test_results_use_original_category_ids_and_xywh(gt_path, tmp_path):
    evaluator = COCOEvaluator(load_coco(gt_path), LABEL_TO_CATEGORY)
    evaluator.add(
        20,
        {
            "boxes": np.array([[5.0, 5.0, 30.0, 30.0], [100.123456, 100.0, 160.5, 170.25]]),
            "scores": torch.tensor([0.25, 0.987654321], dtype=torch.float64),
            "labels": torch.tensor([2, 1]),
        },
    )
    out = evaluator.write_results(tmp_path / "sub" / "dets.json")
    written = json.loads(out.read_text())
    assert written == evaluator.results()
    assert [r["category_id"] for r in written] == [7, 3]  # labels 2, 1 -> category ids 7, 3
    assert all(r["image_id"] == 20 for r in written)
    assert written[0]["bbox"] == [5.0, 5.0, 25.0, 25.0]
    assert written[1]["bbox"] == pytest.approx([100.12, 100.0, 60.38, 70.25], abs=1e-9)
    assert written[1]["score"] == pytest.approx(0.987654, abs=1e-9)
    assert sorted(p.name for p in out.parent.iterdir()) == ["dets.json"]  # no temporary file left
    # round trip: the written file evaluates like the evaluator on the same image
    assert evaluate_results_file(gt_path, out)["per_category"]["cat"] == 0.0  # the "cat" box is on a dog


def test_labels_as_category_ids_when_no_mapping(gt_path):
    evaluator = COCOEvaluator(gt_path)  # labels already are category ids
    for image_id in OBJECTS:
        evaluator.add(image_id, detections_for(image_id, labels=False))
    assert {r["category_id"] for r in evaluator.results()} == {3, 7, 12}
    assert evaluator.evaluate()["AP"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"image_id 10: label 1 is not a category id"):
        evaluator.add(10, detections_for(10))  # contiguous labels without a mapping


def test_bad_inputs_name_the_image_or_label(gt_path):
    evaluator = COCOEvaluator(gt_path, LABEL_TO_CATEGORY)
    with pytest.raises(ValueError, match="image_id 999"):
        evaluator.add(999, detections_for(10))
    bad = detections_for(10)
    bad["labels"][1] = 9
    with pytest.raises(ValueError, match=r"image_id 10: label 9 has no category"):
        evaluator.add(10, bad)
    with pytest.raises(KeyError, match="scores"):
        evaluator.add(10, {"boxes": torch.zeros(0, 4), "labels": []})
    with pytest.raises(ValueError, match=r"image_id 20 field 'scores'"):
        evaluator.add(20, {**detections_for(20), "scores": torch.ones(5)})
    with pytest.raises(ValueError, match=r"image_id 20 field 'boxes'"):
        evaluator.add(20, {**detections_for(20), "boxes": torch.tensor([[5.0, 5, 1, 1], [0, 0, 1, 1]])})
    with pytest.raises(ValueError, match="category ids \\[99\\]"):
        COCOEvaluator(gt_path, {1: 3, 2: 99})


def test_only_added_images_are_evaluated_and_re_adding_replaces(gt_path, tmp_path):
    evaluator = COCOEvaluator(gt_path, LABEL_TO_CATEGORY)
    evaluator.add(10, detections_for(10, shift=1.5))  # all wrong ...
    evaluator.add(10, detections_for(10))  # ... then replaced by the right ones
    assert evaluator.image_ids == [10] and len(evaluator.results()) == 3
    results_file = tmp_path / "dets.json"
    assert evaluator.evaluate(results_file)["AP"] == pytest.approx(1.0)  # on image 10 only
    assert len(json.loads(results_file.read_text())) == 3
    # the same results judged on the whole ground truth miss the other images' objects
    on_all = evaluate_results_file(gt_path, results_file)
    assert on_all["AR100"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)  # recall of cat, dog, bird
    assert on_all["AP"] < 0.9
    evaluator.reset()
    assert evaluator.results() == [] and evaluator.image_ids == []


def test_missing_area_and_iscrowd_in_ground_truth(tmp_path):
    gt = write_gt(tmp_path, with_area=False)
    assert full_evaluator(gt).evaluate()["APl"] == pytest.approx(1.0)


def write_results(tmp_path, entries, name="dets.json"):
    path = tmp_path / name
    path.write_text(json.dumps(entries))
    return path


GOOD = {"image_id": 10, "category_id": 3, "bbox": [10, 10, 20, 20], "score": 0.9}


@pytest.mark.parametrize(
    "entries, message",
    [
        ({"annotations": []}, "expected a JSON list"),
        ([GOOD, [1, 2]], "entry 1: expected an object"),
        ([GOOD, {k: v for k, v in GOOD.items() if k != "score"}], "entry 1: missing field 'score'"),
        ([{**GOOD, "bbox": [1, 2, 3]}], "entry 0: field 'bbox'"),
        ([GOOD, GOOD, {**GOOD, "bbox": [1, 2, -3, 4]}], "entry 2: field 'bbox' has a negative"),
        ([{**GOOD, "score": "high"}], "entry 0: field 'score'"),
        ([{**GOOD, "image_id": "10"}], "entry 0: field 'image_id' must be an integer"),
        ([GOOD, {**GOOD, "image_id": 555}], "entry 1: image_id 555 is not an image"),
        ([{**GOOD, "category_id": 4}], "entry 0: category_id 4 is not a category"),
    ],
)
def test_bad_results_file_names_file_and_entry(gt_path, tmp_path, entries, message):
    path = write_results(tmp_path, entries)
    with pytest.raises(ValueError, match=message) as info:
        evaluate_results_file(gt_path, path)
    assert str(path) in str(info.value)


def test_results_file_not_json_or_missing(gt_path, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("[{")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        load_results_file(path)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        evaluate_results_file(gt_path, tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match="missing_gt.json"):
        evaluate_results_file(tmp_path / "missing_gt.json", path)


def test_empty_results_file_gives_zero_with_a_warning(gt_path, tmp_path):
    with pytest.warns(RuntimeWarning, match="no detections"):
        metrics = evaluate_results_file(gt_path, write_results(tmp_path, []))
    assert metrics["AP"] == 0.0


def test_format_table(gt_path):
    metrics = full_evaluator(gt_path, shift=0.2).evaluate()
    metrics["APs"] = -1.0
    table = format_table(metrics)
    for name in (*METRIC_NAMES, "cat", "dog", "bird"):
        assert name in table
    assert f"{metrics['AP']:.4f}" in table and "n/a" in table
    assert table.count("\n") >= 10
