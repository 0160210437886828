"""The Pascal VOC detection metric: AP at IoU 0.5 per class, as the VOC devkit computes it.

``voc07``: VOC2007's 11-point interpolated AP (the mean of the highest precision at recall >= 0, 0.1, ..,
1); ``voc``: VOC2010+'s all-point AP (the area under the precision envelope). Detections of a class are
taken by decreasing score (ties in the order given); each is a true positive when its best-overlapping
ground truth of that class in its image has IoU > 0.5 and was not matched before, a false positive when it
was (a duplicate) or when no ground truth overlaps enough. When the best overlap is a ``difficult`` object
the detection counts as neither, and difficult objects are not in the recall's denominator.

Boxes are continuous xyxy (COCO's convention; ``rcnn.data.voc`` turned VOC's inclusive pixel indices into
it, so the devkit's ``+ 1`` in widths is already in the boxes). A class without (non-difficult) ground
truth has AP -1 and is left out of the mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

VOCMetric = Literal["voc07", "voc"]


def voc_ap(recall: np.ndarray, precision: np.ndarray, use_07_metric: bool) -> float:
    """AP from the cumulative recall and precision of the sorted detections (the devkit's ``VOCap``)."""
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):  # as the devkit: 0.30000000000000004, not 0.3
            p = precision[recall >= t]
            ap += (float(p.max()) if p.size else 0.0) / 11.0
        return ap
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the precision envelope
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    union = np.prod(box[2:] - box[:2]) + np.prod(boxes[:, 2:] - boxes[:, :2], axis=1) - inter
    return inter / np.maximum(union, np.finfo(np.float64).eps)


def class_ap(
    ground_truth: Mapping[Any, tuple[np.ndarray, np.ndarray]],
    detections: Sequence[tuple[Any, float, Sequence[float]]],
    metric: VOCMetric = "voc07",
    iou_threshold: float = 0.5,
) -> float:
    """The AP of one class. ground_truth: image -> (boxes (G, 4) xyxy, difficult (G,) bool);
    detections: ``(image, score, box xyxy)``. -1 when the class has no non-difficult ground truth."""
    npos = sum(int((~np.asarray(d, bool)).sum()) for _, d in ground_truth.values())
    if npos == 0:
        return -1.0
    order = np.argsort([-s for _, s, _ in detections], kind="stable")
    matched = {img: np.zeros(len(b), bool) for img, (b, _) in ground_truth.items()}
    tp = np.zeros(len(order))
    fp = np.zeros(len(order))
    for rank, d in enumerate(order):
        image, _, box = detections[d]
        gt_boxes, difficult = ground_truth.get(image, (np.zeros((0, 4)), np.zeros(0, bool)))
        if len(gt_boxes) == 0:
            fp[rank] = 1
            continue
        overlaps = _iou(np.asarray(box, np.float64), np.asarray(gt_boxes, np.float64))
        j = int(np.argmax(overlaps))
        if overlaps[j] > iou_threshold:
            if not difficult[j]:
                if not matched[image][j]:
                    tp[rank], matched[image][j] = 1, True
                else:
                    fp[rank] = 1
        else:
            fp[rank] = 1
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / npos
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return voc_ap(recall, precision, metric == "voc07")


def evaluate_voc(
    coco_dataset: Mapping[str, Any], results: Sequence[Mapping[str, Any]], metric: VOCMetric = "voc07"
) -> dict[str, Any]:
    """VOC AP of COCO results (``image_id``, ``category_id``, ``bbox`` xywh, ``score``) against a COCO
    ground-truth dict. ``difficult`` objects are those with ``"difficult": 1``, or, when the file has no
    such field, ``"iscrowd": 1``. Returns ``{"mAP", "metric", "per_category": {name: AP}}``."""
    if metric not in ("voc07", "voc"):
        raise ValueError(f"metric must be 'voc07' or 'voc', got {metric!r}")
    per_category: dict[str, float] = {}
    cats = sorted(coco_dataset["categories"], key=lambda c: c["id"])
    for cat in cats:
        gt: dict[Any, tuple[list, list]] = {}
        for ann in coco_dataset.get("annotations", []):
            if ann["category_id"] != cat["id"]:
                continue
            x, y, w, h = (float(v) for v in ann["bbox"])
            hard = bool(ann.get("difficult", ann.get("iscrowd", 0)))
            boxes, flags = gt.setdefault(ann["image_id"], ([], []))
            boxes.append([x, y, x + w, y + h])
            flags.append(hard)
        ground_truth = {
            i: (np.asarray(b, np.float64).reshape(-1, 4), np.asarray(f, bool)) for i, (b, f) in gt.items()
        }
        dets = [
            (r["image_id"], float(r["score"]), [r["bbox"][0], r["bbox"][1], r["bbox"][0] + r["bbox"][2],
                                                r["bbox"][1] + r["bbox"][3]])
            for r in results
            if r["category_id"] == cat["id"]
        ]  # fmt: skip
        per_category[str(cat.get("name", cat["id"]))] = class_ap(ground_truth, dets, metric)
    valid = [ap for ap in per_category.values() if ap >= 0]
    return {"mAP": float(np.mean(valid)) if valid else -1.0, "metric": metric, "per_category": per_category}
