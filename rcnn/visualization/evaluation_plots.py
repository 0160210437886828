"""Pictures of an evaluation: per-class precision-recall curves and the confusion matrix."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .figures import new_figure, save_figure


def plot_precision_recall(curves: Mapping[str, Any], path: str | os.PathLike) -> str:
    """Per-class precision against recall, one panel per IoU threshold (the dict of
    :func:`rcnn.evaluation.analysis.precision_recall_curves`); 1200 x 500 pixels. Returns the path."""
    ious = list(curves["iou"])
    fig, axes = new_figure(1, len(ious), title="Precision-recall per class (COCOeval, area all, 100 dets)",
                           panel_size=(6.0, 5.0))  # fmt: skip
    recall = np.asarray(curves["recall"])
    for ax, iou in zip(axes, ious):
        for k, (name, precision) in enumerate(curves["iou"][iou].items()):
            ap = float(np.mean(precision))
            ax.plot(recall, precision, color=f"C{k % 10}", label=f"{name} (AP {ap:.3f})")
        ax.set_title(f"IoU {iou}")
        ax.set_xlabel("recall (fraction of objects)")
        ax.set_ylabel("precision (fraction of detections)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if curves["iou"][iou]:
            ax.legend(fontsize=7, loc="lower left")
    return save_figure(fig, path)


def plot_confusion_matrix(matrix: Mapping[str, Any], path: str | os.PathLike) -> str:
    """The normalised confusion matrix with the counts written in the cells (the dict of
    :func:`rcnn.evaluation.analysis.confusion_matrix`); 0.6 inch per class, at least 5 inches."""
    names = list(matrix["classes"])
    norm = np.asarray(matrix["normalized"], dtype=np.float64)
    counts = np.asarray(matrix["counts"], dtype=np.int64)
    side = max(5.0, 0.6 * len(names) + 2.0)
    title = f"Confusion matrix (IoU >= {matrix['iou_threshold']:g}, score >= {matrix['score_threshold']:g})"
    fig, (ax,) = new_figure(1, 1, title=title, panel_size=(side + 1.0, side))
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of the true class's row")
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class (background: missed object)")
    ax.set_ylabel("true class (background: false detection)")
    for i in range(len(names)):
        for j in range(len(names)):
            if counts[i, j]:
                colour = "white" if norm[i, j] > 0.5 else "black"
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8, color=colour)
    return save_figure(fig, path)
