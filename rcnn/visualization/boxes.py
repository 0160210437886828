"""Boxes with class names (and scores) drawn on RGB uint8 images.

Shape shorthand:
    N: boxes; boxes are (N, 4) xyxy in the image's pixels, labels (N,) 1..K, scores (N,)
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import cv2
import numpy as np

GROUND_TRUTH_COLOUR = (0, 200, 0)  # RGB: ground truth in green
DETECTION_COLOUR = (230, 40, 40)  # RGB: detections in red

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.4


def class_colour(label: int) -> tuple[int, int, int]:
    """A fixed, fairly bright RGB colour for class ``label`` (the same on every picture)."""
    rng = np.random.default_rng(int(label) * 7919)
    return tuple(int(c) for c in rng.integers(64, 256, size=3))


def _name(label: int, class_names: Sequence[str]) -> str:
    return class_names[label - 1] if 0 < label <= len(class_names) else str(label)


def _as_list(values) -> list:
    if values is None:
        return []
    return values.tolist() if hasattr(values, "tolist") else list(values)


def draw_boxes(
    image: np.ndarray,
    boxes,
    labels,
    class_names: Sequence[str],
    scores=None,
    *,
    colour: tuple[int, int, int] | None = None,
    thickness: int = 2,
    caption_below: bool = False,
) -> np.ndarray:
    """Draw boxes (N, 4) xyxy with ``name`` (or ``name score``) captions on a copy of an RGB uint8 image.

    ``colour``: one RGB colour for every box (default: the colour of each box's class). ``caption_below``
    puts the caption under the box's bottom edge instead of over its top edge (two sets on one picture).
    """
    out = np.ascontiguousarray(image.copy())
    score_list = _as_list(scores)
    for i, (box, label) in enumerate(zip(_as_list(boxes), _as_list(labels))):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        c = colour or class_colour(int(label))
        cv2.rectangle(out, (x1, y1), (x2, y2), c, thickness)
        caption = _name(int(label), class_names)
        if score_list:
            caption += f" {score_list[i]:.2f}"
        (tw, th), _ = cv2.getTextSize(caption, _FONT, _FONT_SCALE, 1)
        if caption_below:
            y_text = min(y2 + th + 2, out.shape[0] - 1)
        else:
            y_text = max(y1, th + 2)
        cv2.rectangle(out, (x1, y_text - th - 2), (x1 + tw + 2, y_text), c, -1)
        cv2.putText(out, caption, (x1 + 1, y_text - 2), _FONT, _FONT_SCALE, (0, 0, 0), 1)
    return out


def draw_detections(image: np.ndarray, boxes, labels, scores, class_names: Sequence[str]) -> np.ndarray:
    """Draw detections (D, 4) xyxy with ``name score`` captions in their class colours (tools/infer.py)."""
    return draw_boxes(image, boxes, labels, class_names, scores)


def draw_ground_truth_and_detections(
    image: np.ndarray,
    gt_boxes,
    gt_labels,
    det_boxes,
    det_labels,
    det_scores,
    class_names: Sequence[str],
) -> np.ndarray:
    """Ground truth (green, caption under the box) and detections (red, ``name score`` over the box) on
    a copy of an RGB uint8 image, with a two-line key in the top-left corner."""
    out = draw_boxes(
        image, gt_boxes, gt_labels, class_names, colour=GROUND_TRUTH_COLOUR, thickness=1, caption_below=True
    )
    out = draw_boxes(out, det_boxes, det_labels, class_names, det_scores, colour=DETECTION_COLOUR)
    for row, (text, c) in enumerate((("ground truth", GROUND_TRUTH_COLOUR), ("detection", DETECTION_COLOUR))):
        y = 12 + 12 * row
        cv2.putText(out, text, (3, y), _FONT, _FONT_SCALE, (0, 0, 0), 3)
        cv2.putText(out, text, (3, y), _FONT, _FONT_SCALE, c, 1)
    return out


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB uint8 image as PNG/JPEG (by the extension), making the folder; raises on failure."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write the image {path}")
