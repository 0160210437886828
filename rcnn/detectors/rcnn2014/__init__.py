"""R-CNN (Girshick et al. 2014): warped region crops, a fine-tuned CNN, per-class SVMs and box regression.

- :mod:`.model`: ``RCNN``, the test-time model; :mod:`.warp`: the crops;
- :mod:`.finetune`: the fine-tuning stage; :mod:`.feature_cache`: cached features;
- :mod:`.svm`: hard-negative-mined SVMs; :mod:`.bbox_regressor`: class-specific box regression;
- :mod:`.train`: the stages in order.
"""
