"""The proposal-quality picture of ``tools/evaluate.py --proposals``: recall against the IoU threshold
(one line per number of proposals) and recall against the number of proposals per image (recall at 0.5,
0.7 and the average recall), drawn from the dict of :func:`rcnn.proposals.quality.proposal_quality`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from .figures import new_figure, save_figure


def _values(values: list[float | None]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def plot_proposal_recall(quality: Mapping[str, Any], path: str | os.PathLike, *, name: str = "") -> str:
    """Two panels, 1100 x 450 pixels: recall vs IoU, recall vs proposals per image. Returns the path."""
    title = f"Proposal recall{': ' + name if name else ''} ({quality['num_images']} images, " \
            f"{quality['num_gt_boxes']} objects)"  # fmt: skip
    fig, (left, right) = new_figure(1, 2, title=title, panel_size=(5.5, 4.5))
    by_iou = quality["recall_vs_iou"]
    ious = np.asarray(by_iou["iou"], dtype=np.float64)
    for k, (key, scores) in enumerate([*quality["top_n"].items(), ("all", quality["all"])]):
        ar = scores["AR"]
        label = f"{key} proposals" if key != "all" else f"all ({quality['boxes_per_image_max']} max)"
        label += f", AR {ar:.3f}" if ar is not None else ""
        left.plot(ious, _values(by_iou[key]), color=f"C{k % 10}", marker="o", markersize=3, label=label)
    left.set_title("Recall against IoU")
    left.set_xlabel("IoU threshold")
    left.set_ylabel("recall (fraction of objects)")
    left.set_xlim(0.5, 1.0)
    left.set_ylim(0, 1.02)
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="lower left")
    by_count = quality["recall_vs_proposals"]
    counts = np.asarray(by_count["proposals"], dtype=np.float64)
    for key, style in (("recall@0.5", "-"), ("recall@0.7", "--"), ("AR", ":")):
        right.plot(counts, _values(by_count[key]), style, marker="o", markersize=3,
                   label=key if key != "AR" else "AR (IoU 0.5:0.95)")  # fmt: skip
    right.set_xscale("log")
    right.set_title("Recall against the number of proposals")
    right.set_xlabel("proposals per image (best ranked first)")
    right.set_ylabel("recall (fraction of objects)")
    right.set_ylim(0, 1.02)
    right.grid(alpha=0.3, which="both")
    right.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def draw_proposals(image: np.ndarray, boxes, colour: tuple[int, int, int] = (230, 40, 40)) -> np.ndarray:
    """Proposals (P, 4) xyxy as thin rectangles without captions on a copy of an RGB uint8 image; the
    best-ranked drawn last (on top)."""
    out = np.ascontiguousarray(image.copy())
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[::-1]:
        cv2.rectangle(out, (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2))), colour, 1)
    return out
