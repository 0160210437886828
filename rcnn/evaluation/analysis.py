"""Error analysis of COCO results against COCO ground truth: a confusion matrix with a background row and
column, the images with the most errors, and per-class precision-recall curves from COCOeval.

Shape shorthand:
    K: categories; the confusion matrix is (K + 1, K + 1): rows the true class, columns the predicted
    class, the last row and column "background" (false detections, missed objects)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .voc import _iou


def _by_image(dataset: Mapping[str, Any], results: Sequence[Mapping[str, Any]], score_threshold: float):
    gts: dict[int, list] = {img["id"]: [] for img in dataset["images"]}
    for ann in dataset.get("annotations", []):
        x, y, w, h = (float(v) for v in ann["bbox"])
        hard = bool(ann.get("iscrowd", 0) or ann.get("difficult", 0))
        gts.setdefault(ann["image_id"], []).append(([x, y, x + w, y + h], ann["category_id"], hard))
    dets: dict[int, list] = {i: [] for i in gts}
    for r in results:
        if r["score"] >= score_threshold:
            x, y, w, h = (float(v) for v in r["bbox"])
            dets.setdefault(r["image_id"], []).append(
                ([x, y, x + w, y + h], r["category_id"], float(r["score"]))
            )
    for v in dets.values():
        v.sort(key=lambda d: -d[2])
    return gts, dets


def _match(gt: list, det: list, iou_threshold: float, same_class: bool) -> tuple[list, list]:
    """Greedy by score: each detection takes the unmatched ground truth of highest IoU >= threshold (of
    its class when ``same_class``). Returns (matched gt index or -1 per detection, matched flag per gt);
    a detection whose best match is a crowd / difficult object gets -2 (ignored)."""
    taken = [False] * len(gt)
    out = []
    boxes = np.asarray([g[0] for g in gt], np.float64).reshape(-1, 4)
    for box, label, _ in det:
        best, where = iou_threshold, -1
        if len(gt):
            ious = _iou(np.asarray(box, np.float64), boxes)
            for j in np.argsort(-ious, kind="stable"):
                if ious[j] < best:
                    break
                if taken[j] and not gt[j][2]:
                    continue
                if same_class and gt[j][1] != label:
                    continue
                where = int(j)
                break
        if where >= 0 and gt[where][2]:
            out.append(-2)
            continue
        if where >= 0:
            taken[where] = True
        out.append(where)
    return out, taken


def confusion_matrix(
    dataset: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> dict[str, Any]:
    """The (K + 1, K + 1) confusion matrix of the detections with score >= ``score_threshold``.

    Detections are matched greedily by score to the unmatched ground truth of highest IoU >=
    ``iou_threshold``, whatever its class: cell [true, predicted] += 1. An unmatched detection adds to
    [background, predicted], an unmatched object to [true, background]. Crowd / difficult objects are not
    counted, nor detections matched to them. Returns ``{"classes": [names..., "background"], "counts",
    "normalized"}``; ``normalized`` divides each row by its sum (per true class).
    """
    cats = sorted(dataset["categories"], key=lambda c: c["id"])
    index = {c["id"]: k for k, c in enumerate(cats)}
    bg = len(cats)
    counts = np.zeros((bg + 1, bg + 1), np.int64)
    gts, dets = _by_image(dataset, results, score_threshold)
    for image_id, gt in gts.items():
        det = dets.get(image_id, [])
        matches, taken = _match(gt, det, iou_threshold, same_class=False)
        for (_, label, _), m in zip(det, matches):
            if m >= 0:
                counts[index[gt[m][1]], index[label]] += 1
            elif m == -1:
                counts[bg, index[label]] += 1
        for (_, label, hard), t in zip(gt, taken):
            if not t and not hard:
                counts[index[label], bg] += 1
    sums = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, sums, out=np.zeros(counts.shape), where=sums > 0)
    return {
        "classes": [str(c.get("name", c["id"])) for c in cats] + ["background"],
        "iou_threshold": iou_threshold,
        "score_threshold": score_threshold,
        "counts": counts.tolist(),
        "normalized": normalized.round(4).tolist(),
    }


def image_errors(
    dataset: Mapping[str, Any],
    results: Sequence[Mapping[str, Any]],
    *,
    iou_threshold: float = 0.5,
    score_threshold: float = 0.5,
) -> list[dict[str, Any]]:
    """Per image: ``false_positives`` (detections with score >= threshold matching no object of their
    class at IoU >= threshold, duplicates included), ``missed`` objects and ``errors`` (their sum), sorted
    by decreasing errors (ties by image id)."""
    names = {img["id"]: img.get("file_name", "") for img in dataset["images"]}
    gts, dets = _by_image(dataset, results, score_threshold)
    rows = []
    for image_id, gt in gts.items():
        matches, taken = _match(gt, dets.get(image_id, []), iou_threshold, same_class=True)
        fp = sum(m == -1 for m in matches)
        missed = sum(not t and not g[2] for g, t in zip(gt, taken))
        rows.append({"image_id": image_id, "file_name": names.get(image_id, ""), "errors": fp + missed,
                     "false_positives": fp, "missed": missed})  # fmt: skip
    rows.sort(key=lambda r: (-r["errors"], r["image_id"]))
    return rows


def precision_recall_curves(coco_eval) -> dict[str, Any]:
    """Per-category precision at the 101 recall thresholds, at IoU 0.5 and 0.75, area "all", 100
    detections, from an evaluated and accumulated ``COCOeval``. Returns ``{"recall": [...],
    "iou": {"0.5": {name: [precision...]}, "0.75": {...}}}``; a category without ground truth is left out."""
    precision = coco_eval.eval["precision"]  # (T, R, K, A, M); -1 where there is no ground truth
    params = coco_eval.params
    names = {c: str(coco_eval.cocoGt.cats[c].get("name", c)) for c in params.catIds}
    out: dict[str, Any] = {"recall": [float(r) for r in params.recThrs], "iou": {}}
    for iou in (0.5, 0.75):
        t = int(np.argmin(np.abs(np.asarray(params.iouThrs) - iou)))
        curves = {}
        for k, cat in enumerate(params.catIds):
            p = precision[t, :, k, 0, -1]
            if (p > -1).any():
                curves[names[cat]] = [float(max(v, 0.0)) for v in p]
        out["iou"][f"{iou:g}"] = curves
    return out
