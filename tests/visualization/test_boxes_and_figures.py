"""rcnn.visualization: boxes drawn where they belong, in the right colours; figures written at their size."""

from __future__ import annotations

import cv2
import numpy as np

from rcnn.visualization import (
    DETECTION_COLOUR,
    GROUND_TRUTH_COLOUR,
    class_colour,
    draw_boxes,
    draw_ground_truth_and_detections,
    new_figure,
    save_figure,
    write_image,
)


def test_draw_boxes_paints_the_box_edges_in_the_class_colour_and_leaves_the_input_alone():
    image = np.zeros((60, 80, 3), np.uint8)
    out = draw_boxes(image, np.array([[10.0, 20.0, 50.0, 55.0]]), np.array([2]), ["a", "b"])
    assert image.max() == 0  # drawn on a copy
    assert tuple(out[40, 10]) == class_colour(2)  # left edge, below the caption
    assert tuple(out[55, 30]) == class_colour(2)  # bottom edge
    assert out[40, 30].max() == 0  # inside stays untouched


def test_ground_truth_and_detections_get_two_colours(tmp_path):
    image = np.zeros((100, 100, 3), np.uint8)
    out = draw_ground_truth_and_detections(
        image, [[10, 40, 40, 90]], [1], [[60, 40, 95, 90]], [1], [0.9], ["thing"]
    )
    assert tuple(out[70, 10]) == GROUND_TRUTH_COLOUR
    assert tuple(out[70, 95]) == DETECTION_COLOUR
    path = tmp_path / "sub" / "x.png"
    write_image(path, out)
    back = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert np.array_equal(back, out)


def test_save_figure_writes_a_png_of_the_figure_size(tmp_path):
    fig, axes = new_figure(1, 2, title="two panels", panel_size=(3.0, 2.0))
    assert len(axes) == 2
    axes[0].plot([0, 1], [1, 0], label="line")
    axes[0].legend()
    path = save_figure(fig, tmp_path / "f.png")
    image = cv2.imread(path)
    assert image.shape == (200, 600, 3)
    assert image.std() > 0
