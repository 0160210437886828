"""Statistics of a COCO-format detection dataset, read from its annotations (no image is decoded).

Images and boxes per class, box sizes (sqrt area, file pixels), aspect ratios (h / w) and objects per
image: what ``tools/browse_dataset.py`` writes to ``stats.json`` and draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _histogram(values: np.ndarray, bins: np.ndarray | int) -> dict[str, list[float]]:
    counts, edges = np.histogram(values, bins=bins)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _summary(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return {"min": None, "median": None, "max": None}
    return {"min": float(values.min()), "median": float(np.median(values)), "max": float(values.max())}


def dataset_statistics(dataset) -> dict[str, Any]:
    """Statistics of a :class:`rcnn.data.coco.CocoDetection` (its non-crowd boxes, file pixels).

    Returns ``{"images", "boxes", "classes": {name: {"images", "boxes"}}, "box_size": {min, median, max,
    histogram}, "aspect_ratio": {...}, "objects_per_image": {...}}``; histograms are ``{"edges",
    "counts"}``.
    """
    names = list(dataset.class_names)
    boxes_per_class = np.zeros(len(names), np.int64)
    images_per_class = np.zeros(len(names), np.int64)
    sizes, ratios, per_image = [], [], []
    for index in range(len(dataset)):
        target = dataset.raw_target(index)
        boxes, labels = target["boxes"], target["labels"]
        if "iscrowd" in target and not dataset.drop_crowd:
            keep = target["iscrowd"] == 0
            boxes, labels = boxes[keep], labels[keep]
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        ok = (w > 0) & (h > 0)
        sizes.append(np.sqrt(w[ok] * h[ok]))
        ratios.append(h[ok] / w[ok])
        per_image.append(len(labels))
        np.add.at(boxes_per_class, labels - 1, 1)
        images_per_class[np.unique(labels) - 1] += 1
    size = np.concatenate(sizes) if sizes else np.zeros(0)
    ratio = np.concatenate(ratios) if ratios else np.zeros(0)
    objects = np.asarray(per_image, dtype=np.int64)
    size_bins = np.geomspace(max(size.min(), 1.0), max(size.max(), 2.0), 21) if size.size else 10
    ratio_bins = np.geomspace(min(ratio.min(), 0.99), max(ratio.max(), 1.01), 21) if ratio.size else 10
    top = int(objects.max()) if objects.size else 0
    return {
        "images": int(len(dataset)),
        "boxes": int(size.size),
        "classes": {
            n: {"images": int(i), "boxes": int(b)}
            for n, i, b in zip(names, images_per_class, boxes_per_class, strict=True)
        },
        "box_size": {**_summary(size), "histogram": _histogram(size, size_bins)},
        "aspect_ratio": {**_summary(ratio), "histogram": _histogram(ratio, ratio_bins)},
        "objects_per_image": {
            **_summary(objects.astype(np.float64)),
            "histogram": _histogram(objects, np.arange(-0.5, top + 1.5)),
        },
    }
