"""Every detector says whether its eval forward takes proposals from outside: Fast R-CNN and R-CNN do,
Faster R-CNN (its own RPN) does not; inference hands proposals over on that attribute alone."""

from __future__ import annotations

import pytest

from rcnn.config_schema import ModelConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.generalized_rcnn import GeneralizedRCNN
from rcnn.detectors.rcnn2014.model import RCNN


def lenet_detector(kind: str):
    cfg = ModelConfig(type=kind)
    cfg.backbone.name = "lenet5"
    cfg.rcnn.input_size, cfg.rcnn.context_padding = 32, 2
    return build_detector(cfg, 2)


@pytest.mark.parametrize(
    ("kind", "cls", "needs"),
    [("fast_rcnn", GeneralizedRCNN, True), ("faster_rcnn", GeneralizedRCNN, False), ("rcnn", RCNN, True)],
)
def test_needs_proposals(kind, cls, needs):
    model = lenet_detector(kind)
    assert isinstance(model, cls)
    assert model.needs_proposals is needs


def test_rcnn_no_longer_imitates_generalized_rcnn():
    model = lenet_detector("rcnn")
    assert not hasattr(model, "proposal_generator") and not hasattr(model, "roi_heads")
