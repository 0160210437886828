"""R-CNN (Girshick et al. 2014): warped region crops, a fine-tuned CNN, per-class SVMs and box regression.

- :mod:`.model`: ``RCNN``, the test-time model, and ``build_rcnn``; :mod:`.warp`: the crops;
- :mod:`.finetune`: the fine-tuning stage's model; :mod:`.feature_cache`: cached features;
- :mod:`.svm`: hard-negative-mined SVMs; :mod:`.bbox_regressor`: class-specific box regression;
- :mod:`.train`: the pieces of the stages (their order is :func:`rcnn.tasks.rcnn2014.train_rcnn`).
"""

from .model import RCNN, build_rcnn

__all__ = ["RCNN", "build_rcnn"]
