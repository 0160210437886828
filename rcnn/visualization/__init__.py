"""Pictures of images, boxes and metrics, shared by tools/infer.py, browse_dataset.py, plot_metrics.py and
evaluate.py: :mod:`.boxes` draws boxes with class names on images (OpenCV), :mod:`.figures` makes matplotlib
figures (Agg backend, no display needed)."""

from .boxes import (
    DETECTION_COLOUR,
    GROUND_TRUTH_COLOUR,
    class_colour,
    draw_boxes,
    draw_detections,
    draw_ground_truth_and_detections,
    write_image,
)
from .figures import new_figure, save_figure

__all__ = [
    "DETECTION_COLOUR",
    "GROUND_TRUTH_COLOUR",
    "class_colour",
    "draw_boxes",
    "draw_detections",
    "draw_ground_truth_and_detections",
    "new_figure",
    "save_figure",
    "write_image",
]
