"""COCO box evaluation (pycocotools' COCOeval) of detections given in the original image's pixels.

Detections arrive as ``{"boxes" (D, 4) xyxy, "scores" (D,), "labels" (D,) in 1..K}`` per image id; they are
stored as COCO results (``image_id``, the dataset's ``category_id``, ``bbox`` absolute ``[x, y, w, h]``,
``score``) and evaluated with the 12 standard numbers (AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100,
ARs, ARm, ARl, all in 0..1; -1 where the ground truth has nothing to measure, COCO's convention) plus the AP
of each category.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from rcnn.structures import check_boxes
from rcnn.utils.io import atomic_write_json

logger = logging.getLogger(__name__)

METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
RESULT_FIELDS = ("image_id", "category_id", "bbox", "score")
BOX_DECIMALS = 2  # results file: boxes to 1/100 pixel
SCORE_DECIMALS = 6

PathLike = str | os.PathLike


def load_coco(path: PathLike) -> COCO:
    """Load a COCO ground-truth file quietly; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}")
    try:
        with path.open(encoding="utf-8") as f:
            dataset = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(dataset, dict) or "images" not in dataset or "categories" not in dataset:
        raise ValueError(f"{path}: not a COCO annotation file (needs 'images' and 'categories')")
    dataset.setdefault("annotations", [])
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _complete_ground_truth(coco: COCO) -> None:
    """COCOeval reads ``area`` and ``iscrowd`` of every annotation: fill them in (w * h, 0) when missing."""
    for ann in coco.dataset.get("annotations", []):
        if "iscrowd" not in ann:
            ann["iscrowd"] = 0
        if "area" not in ann and "bbox" in ann:
            ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])


def write_json_atomic(path: PathLike, obj: Any, indent: int | None = None) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (:func:`rcnn.utils.io.atomic_write_json`)."""
    return Path(atomic_write_json(obj, path, indent=indent))


def _empty_results(coco_gt: COCO) -> COCO:
    """A results COCO without detections (``COCO.loadRes([])`` raises IndexError)."""
    coco_dt = COCO()
    coco_dt.dataset = {
        "images": list(coco_gt.dataset.get("images", [])),
        "categories": copy.deepcopy(coco_gt.dataset.get("categories", [])),
        "annotations": [],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt.createIndex()
    return coco_dt


def _category_names(coco_gt: COCO, cat_ids: Iterable[int]) -> dict[int, str]:
    """Category id -> display name (the name, or ``name (id)`` when two categories share a name)."""
    cat_ids = list(cat_ids)
    names = [str(coco_gt.cats[c].get("name", c)) for c in cat_ids]
    return {
        c: (name if names.count(name) == 1 else f"{name} ({c})")
        for c, name in zip(cat_ids, names, strict=True)
    }


def run_cocoeval(
    coco_gt: COCO, results: list[dict[str, Any]], image_ids: Iterable[int] | None = None
) -> COCOeval:
    """COCOeval (bbox) of ``results`` (COCO result dicts, already checked) against ``coco_gt``, evaluated,
    accumulated and summarized quietly. ``image_ids``: the images to evaluate on (default: all). No results
    at all gives AP 0 (and a warning) instead of pycocotools' IndexError."""
    _complete_ground_truth(coco_gt)
    if not results:
        warnings.warn(
            "COCO evaluation: there are no detections at all; every AP and AR is 0",
            RuntimeWarning,
            stacklevel=4,
        )
        coco_dt = _empty_results(coco_gt)
    else:
        with contextlib.redirect_stdout(io.StringIO()):
            coco_dt = coco_gt.loadRes(copy.deepcopy(results))  # loadRes adds fields to the dicts
    coco_eval = COCOeval(coco_gt, coco_dt, iouType="bbox")
    if image_ids is not None:
        coco_eval.params.imgIds = sorted(int(i) for i in image_ids)
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    logger.debug("COCOeval output:\n%s", log.getvalue())
    return coco_eval


def evaluate_results(
    coco_gt: COCO, results: list[dict[str, Any]], image_ids: Iterable[int] | None = None
) -> dict[str, Any]:
    """Run COCOeval (bbox) of ``results`` (COCO result dicts, already checked) against ``coco_gt``.

    ``image_ids``: the images to evaluate on (default: every image of the ground truth). Returns the 12
    standard numbers by name and ``"per_category": {name: AP}``. No results at all gives AP 0 (and a
    warning) instead of pycocotools' IndexError.
    """
    return coco_metrics(run_cocoeval(coco_gt, results, image_ids))


def coco_metrics(coco_eval: COCOeval) -> dict[str, Any]:
    """The 12 standard numbers by name and ``"per_category": {name: AP}`` of an accumulated COCOeval."""
    coco_gt = coco_eval.cocoGt
    metrics: dict[str, Any] = {name: float(v) for name, v in zip(METRIC_NAMES, coco_eval.stats, strict=True)}
    # precision: (iou thresholds, recall thresholds, categories, area ranges, max detections); -1 = no gt
    precision = coco_eval.eval["precision"]
    names = _category_names(coco_gt, coco_eval.params.catIds)
    per_category = {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p = precision[:, :, k, 0, -1]  # area "all", 100 detections
        p = p[p > -1]
        per_category[names[cat_id]] = float(np.mean(p)) if p.size else -1.0
    metrics["per_category"] = per_category
    return metrics


class COCOEvaluator:
    """Collect detections image by image and evaluate them with COCOeval (bbox).

    coco_gt: a pycocotools ``COCO`` or the path of a COCO annotation file.
    label_to_category: contiguous label (1..K) -> the file's category id; ``None``: labels already are
    category ids.

    ``add`` the detections of every evaluated image (also images without detections: only the images added
    are evaluated, so evaluating part of a dataset is fair); adding an image id again replaces its
    detections (a distributed sampler may repeat images).
    """

    def __init__(self, coco_gt: COCO | PathLike, label_to_category: Mapping[int, int] | None = None):
        self.coco_gt = coco_gt if isinstance(coco_gt, COCO) else load_coco(coco_gt)
        self.label_to_category = (
            None if label_to_category is None else {int(k): int(v) for k, v in label_to_category.items()}
        )
        if self.label_to_category is not None:
            unknown = sorted(set(self.label_to_category.values()) - set(self.coco_gt.cats))
            if unknown:
                raise ValueError(
                    f"label_to_category maps to category ids {unknown} that the ground truth does not have "
                    f"(it has {sorted(self.coco_gt.cats)})"
                )
        self._results: dict[int, list[dict[str, Any]]] = {}

    def reset(self) -> None:
        """Forget every detection added so far."""
        self._results.clear()

    @property
    def image_ids(self) -> list[int]:
        """The image ids added so far, in the order they were added."""
        return list(self._results)

    def _category(self, label: int, image_id: int) -> int:
        if self.label_to_category is None:
            if label not in self.coco_gt.cats:
                raise ValueError(
                    f"image_id {image_id}: label {label} is not a category id of the ground truth "
                    f"({sorted(self.coco_gt.cats)}); pass label_to_category to map contiguous labels"
                )
            return label
        if label not in self.label_to_category:
            raise ValueError(
                f"image_id {image_id}: label {label} has no category in label_to_category "
                f"(labels {sorted(self.label_to_category)})"
            )
        return self.label_to_category[label]

    def add(self, image_id: int, detections: Mapping[str, Any]) -> None:
        """Add the detections of one image.

        detections: ``boxes`` (D, 4) float xyxy in the original image's pixels, ``scores`` (D,),
        ``labels`` (D,) int (1..K, or category ids when ``label_to_category`` is None). Tensors, arrays or
        lists.
        """
        image_id = int(image_id)
        if image_id not in self.coco_gt.imgs:
            raise ValueError(f"image_id {image_id} is not an image of the ground truth")
        where = f"detections of image_id {image_id}"
        for key in ("boxes", "scores", "labels"):
            if key not in detections:
                raise KeyError(f"{where}: missing field '{key}'")
        boxes = torch.as_tensor(detections["boxes"]).detach().to("cpu", torch.float64)
        if boxes.numel() == 0:
            boxes = boxes.reshape(0, 4)
        scores = torch.as_tensor(detections["scores"]).detach().to("cpu", torch.float64).reshape(-1)
        labels = torch.as_tensor(detections["labels"]).detach().cpu().reshape(-1)
        check_boxes(boxes, f"{where} field 'boxes'")
        for key, value in (("scores", scores), ("labels", labels)):
            if value.shape[0] != boxes.shape[0]:
                raise ValueError(
                    f"{where} field '{key}': expected one value per box ({boxes.shape[0]}), "
                    f"got {value.shape[0]}"
                )
        if scores.numel() and not torch.isfinite(scores).all():
            raise ValueError(f"{where} field 'scores': contains NaN or infinite values")
        if labels.is_floating_point() and labels.numel() and not torch.equal(labels, labels.round()):
            raise ValueError(f"{where} field 'labels': expected integer labels, got {labels.tolist()[:5]}")

        results = []
        for (x1, y1, x2, y2), score, label in zip(
            boxes.tolist(), scores.tolist(), labels.long().tolist(), strict=True
        ):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": self._category(label, image_id),
                    "bbox": [round(v, BOX_DECIMALS) for v in (x1, y1, x2 - x1, y2 - y1)],
                    "score": round(score, SCORE_DECIMALS),
                }
            )
        if image_id in self._results:
            logger.debug("image_id %d added again: its detections are replaced", image_id)
        self._results[image_id] = results

    def results(self) -> list[dict[str, Any]]:
        """Every detection added, as COCO result dicts (``image_id``, ``category_id``, ``bbox`` [x, y, w, h]
        absolute pixels, ``score``)."""
        return [copy.deepcopy(r) for rs in self._results.values() for r in rs]

    def write_results(self, path: PathLike) -> Path:
        """Write :meth:`results` to ``path`` as a COCO results JSON (atomically)."""
        return write_json_atomic(path, self.results())

    def evaluate(self, results_file: PathLike | None = None) -> dict[str, Any]:
        """COCO-evaluate the detections added so far on the images added so far (all the ground truth's
        images when none was added). ``results_file``: also write the results there first.

        Returns ``{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl",
        "per_category": {category name: AP}}``.
        """
        if results_file is not None:
            self.write_results(results_file)
        image_ids = list(self._results) or None
        return evaluate_results(self.coco_gt, self.results(), image_ids)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_results_file(path: PathLike, coco_gt: COCO | None = None) -> list[dict[str, Any]]:
    """Read and check a COCO results JSON: a list of ``{"image_id", "category_id", "bbox" [x, y, w, h],
    "score"}``. With ``coco_gt``, image and category ids must exist in it. Errors name the file and the entry
    index. Returns the entries reduced to those four fields."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        with path.open(encoding="utf-8") as f:
            entries = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(entries, list):
        hint = (
            " (this looks like a ground-truth file)"
            if isinstance(entries, dict) and "images" in entries
            else ""
        )
        raise ValueError(f"{path}: expected a JSON list of detections, got {type(entries).__name__}{hint}")
    results = []
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object, got {type(entry).__name__}")
        for key in RESULT_FIELDS:
            if key not in entry:
                raise ValueError(f"{where}: missing field '{key}'")
        for key in ("image_id", "category_id"):
            if not isinstance(entry[key], int) or isinstance(entry[key], bool):
                raise ValueError(f"{where}: field '{key}' must be an integer, got {entry[key]!r}")
        bbox = entry["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
            raise ValueError(f"{where}: field 'bbox' must be [x, y, w, h] (4 finite numbers), got {bbox!r}")
        if bbox[2] < 0 or bbox[3] < 0:
            raise ValueError(f"{where}: field 'bbox' has a negative width or height: {bbox!r}")
        if not _is_number(entry["score"]):
            raise ValueError(f"{where}: field 'score' must be a finite number, got {entry['score']!r}")
        if coco_gt is not None:
            if entry["image_id"] not in coco_gt.imgs:
                raise ValueError(f"{where}: image_id {entry['image_id']} is not an image of the ground truth")
            if entry["category_id"] not in coco_gt.cats:
                raise ValueError(
                    f"{where}: category_id {entry['category_id']} is not a category of the ground truth "
                    f"({sorted(coco_gt.cats)})"
                )
        results.append({key: entry[key] for key in RESULT_FIELDS})
    return results


def evaluate_results_file(gt_path: PathLike | COCO, results_path: PathLike) -> dict[str, Any]:
    """COCO-evaluate a results JSON against a ground-truth file, on every image of the ground truth (images
    without detections count as misses). Returns the metrics of :func:`evaluate_results`."""
    coco_gt = gt_path if isinstance(gt_path, COCO) else load_coco(gt_path)
    return evaluate_results(coco_gt, load_results_file(results_path, coco_gt))


def _cell(value: float) -> str:
    return "n/a" if value < 0 else f"{value:.4f}"


def format_table(metrics: Mapping[str, Any]) -> str:
    """The metrics as markdown tables: the AP row, the AR row, then AP per category."""
    lines = []
    for names in (METRIC_NAMES[:6], METRIC_NAMES[6:]):
        present = [n for n in names if n in metrics]
        if not present:
            continue
        lines.append("| " + " | ".join(present) + " |")
        lines.append("|" + "|".join("---:" for _ in present) + "|")
        lines.append("| " + " | ".join(_cell(float(metrics[n])) for n in present) + " |")
        lines.append("")
    per_category = metrics.get("per_category") or {}
    if per_category:
        width = max(len("category"), *(len(str(n)) for n in per_category))
        lines.append(f"| {'category':<{width}} | AP |")
        lines.append(f"|{'-' * (width + 2)}|---:|")
        lines.extend(f"| {str(n):<{width}} | {_cell(float(ap))} |" for n, ap in per_category.items())
    return "\n".join(lines).rstrip() + "\n"
