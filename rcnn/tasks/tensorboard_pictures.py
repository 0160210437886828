"""Pictures of a detection training run in TensorBoard (``solver.vis_period``; 0: off): every
``vis_period`` iterations one val image with its ground truth (green, class names) and the detector's
best-ranked proposals (red: the RPN's for Faster R-CNN, the given ones for Fast R-CNN), and after each
evaluation the per-class precision-recall curves (:func:`rcnn.visualization.evaluation_plots.
plot_precision_recall`, as an image). The engine knows nothing of detection: this is a
:class:`~rcnn.engine.hooks.Hook` the detection tool passes to the Trainer.

The pictures go to their own event file in ``output.dir`` (suffix ``.pictures``), beside the trainer's
scalars, so TensorBoard shows them as one run. Only the main process writes.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np
import torch
from torch import nn

from rcnn.engine.hooks import Hook
from rcnn.evaluation.analysis import precision_recall_curves
from rcnn.evaluation.coco import load_results_file, run_cocoeval
from rcnn.visualization import GROUND_TRUTH_COLOUR, draw_boxes
from rcnn.visualization.evaluation_plots import plot_precision_recall
from rcnn.visualization.proposal_plots import draw_proposals

from .rpn_proposals import rpn_proposals

if TYPE_CHECKING:
    from rcnn.engine.trainer import Trainer

PROPOSALS_TAG = "pictures/ground_truth_and_top_proposals"
PR_CURVES_TAG = "pictures/pr_curves"


def proposals_picture(model: nn.Module, image: torch.Tensor, target: dict, class_names: Sequence[str],
                      top_k: int) -> np.ndarray:  # fmt: skip
    """The (H, W, 3) uint8 picture of ``image`` (3, H, W) float 0..255: the ``top_k`` best proposals of
    ``model`` (its RPN, or ``target["proposals"]`` without one) in red under the ground truth in green."""
    if model.proposal_generator is not None:
        device = next(model.parameters()).device
        proposals = rpn_proposals(model, [image.to(device)], top_k)[0].cpu()
    else:
        proposals = target["proposals"][:top_k]
    picture = image.detach().cpu().permute(1, 2, 0).clamp(0, 255).to(torch.uint8).numpy()
    picture = draw_proposals(picture, proposals.numpy())
    return draw_boxes(picture, target["boxes"].numpy(), target["labels"].numpy(), class_names,
                      colour=GROUND_TRUTH_COLOUR)  # fmt: skip


class TensorBoardPictures(Hook):
    """``TensorBoardPictures(period, dataset, output_dir)``: the proposals picture of ``dataset[index]``
    (a val set with test transforms) every ``period`` iterations; :meth:`log_pr_curves` after an evaluation.
    ``period=0`` does nothing at all (no event file)."""

    def __init__(self, period: int, dataset, output_dir: str, *, index: int = 0, top_k: int = 20) -> None:
        self.period = int(period)
        self.dataset = dataset
        self.output_dir = output_dir
        self.index = index
        self.top_k = top_k
        self.step = 0
        self.writer = None

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def before_train(self, trainer: Trainer) -> None:
        self.step = trainer.iter
        if self.period <= 0 or not trainer.is_main or len(self.dataset) == 0:
            return
        from torch.utils.tensorboard import SummaryWriter  # optional heavy dependency, only when enabled

        purge = trainer.start_iter + 1 if trainer.start_iter else None  # a resumed run: drop later pictures
        self.writer = SummaryWriter(self.output_dir, purge_step=purge, filename_suffix=".pictures")

    def after_step(self, trainer: Trainer) -> None:
        self.step = trainer.iter
        if self.writer is None or trainer.iter % self.period:
            return
        model = trainer.unwrapped_model
        was_training = model.training
        try:
            image, target = self.dataset[self.index]
            picture = proposals_picture(model, image, target, self.dataset.class_names, self.top_k)
        finally:
            model.train(was_training)
        self.writer.add_image(PROPOSALS_TAG, picture, self.step, dataformats="HWC")
        self.writer.flush()

    def log_pr_curves(self, coco_gt, detections_file: str) -> None:
        """The precision-recall figure of the detections in ``detections_file`` (COCO results) at the
        current iteration; nothing when disabled."""
        if self.writer is None:
            return
        curves = precision_recall_curves(
            run_cocoeval(coco_gt, load_results_file(detections_file, coco_gt), None)
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = plot_precision_recall(curves, os.path.join(tmp, "pr_curves.png"))
            picture = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        self.writer.add_image(PR_CURVES_TAG, picture, self.step, dataformats="HWC")
        self.writer.flush()

    def after_train(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
