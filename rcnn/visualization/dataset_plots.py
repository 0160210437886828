"""The dataset statistics picture of ``tools/browse_dataset.py``: one PNG of six panels drawn
from the dicts of :func:`rcnn.data.statistics.dataset_statistics` and
:func:`rcnn.modeling.anchor_fit.anchor_fit_report`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from .figures import new_figure, save_figure

STATISTICS_PANEL = (5.0, 3.6)  # inches per panel; the picture is 3 x 2 panels


def _hist_panel(ax, hist: Mapping[str, Any], title: str, xlabel: str, log_x: bool = False) -> None:
    edges = np.asarray(hist["edges"], dtype=np.float64)
    counts = np.asarray(hist["counts"], dtype=np.float64)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", edgecolor="black", linewidth=0.5)
    if log_x:
        ax.set_xscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("boxes")


def plot_dataset_statistics(
    stats: Mapping[str, Any], path: str | os.PathLike, anchor_fit: Mapping[str, Any] | None = None
) -> str:
    """Draw images and boxes per class, box sizes, aspect ratios, objects per image and (when given) the
    anchor fit by object size into the PNG ``path`` (1500 x 720 pixels). Returns the path."""
    title = f"Dataset statistics: {stats['images']} images, {stats['boxes']} boxes"
    fig, axes = new_figure(2, 3, title=title, panel_size=STATISTICS_PANEL)
    names = list(stats["classes"])
    x = np.arange(len(names))
    ax = axes[0]
    ax.bar(x - 0.2, [stats["classes"][n]["images"] for n in names], 0.4, label="images")
    ax.bar(x + 0.2, [stats["classes"][n]["boxes"] for n in names], 0.4, label="boxes")
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_title("Images and boxes per class")
    ax.set_xlabel("class")
    ax.set_ylabel("count")
    ax.legend()
    _hist_panel(
        axes[1], stats["box_size"]["histogram"], "Box size", "sqrt(area) in the file (px)", log_x=True
    )
    _hist_panel(axes[2], stats["aspect_ratio"]["histogram"], "Box aspect ratio", "height / width", log_x=True)
    _hist_panel(axes[3], stats["objects_per_image"]["histogram"], "Objects per image", "objects in the image")
    axes[3].set_ylabel("images")
    ax = axes[4]
    if anchor_fit is not None:
        rows = [r for r in anchor_fit["by_size"] if r["boxes"]]
        labels = [r["size"] for r in rows]
        xs = np.arange(len(rows))
        for offset, key, colour in ((-0.27, "iou>=0.7", "tab:green"), (0.0, "iou>=0.5", "tab:olive"),
                                    (0.27, "iou<0.3", "tab:red")):  # fmt: skip
            ax.bar(xs + offset, [r[key] for r in rows], 0.27, label=f"best anchor {key[3:]}", color=colour)
        ax.set_xticks(xs, labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.set_title("Anchor fit by object size")
        ax.set_xlabel("object size, sqrt(area) as the model sees it (px)")
        ax.set_ylabel("fraction of boxes")
        axes[5].axis("off")
        axes[5].set_title("Anchor-fit advice")
        text = anchor_fit["advice"]
        wrapped = "\n".join(text[i : i + 48] for i in range(0, len(text), 48))
        axes[5].text(0.0, 0.9, wrapped, va="top", fontsize=9, family="monospace")
    else:
        ax.axis("off")
        axes[5].axis("off")
    return save_figure(fig, path)
