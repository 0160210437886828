"""Detectors: compositions of the modeling pieces around a backbone.

- :mod:`.generalized_rcnn`: ``GeneralizedRCNN``, Faster R-CNN (with an RPN) and Fast R-CNN (proposals from
  the data), C4 or FPN;
- :mod:`.build`: ``build_detector(cfg.model, num_classes)``, the only reader of ``cfg.model``;
- :mod:`.rcnn2014`: R-CNN (2014): ``RCNN``, warped crops, SVMs, box regression;
- :mod:`.summary`: ``summarize_detector``, parameters and multiply-adds by part;
- :mod:`.torchvision_weights`: torchvision's ``fasterrcnn_resnet50_fpn`` state_dict in rcnn's names;
- :mod:`.export`: ``export_onnx`` (the ``export`` extra); :mod:`.onnx_runtime`: ``OnnxDetector``.

The export modules are left out of the re-exports below: they need the optional ``export`` extra.
"""

from .build import build_detector
from .generalized_rcnn import GeneralizedRCNN
from .rcnn2014 import RCNN
from .summary import summarize_detector

__all__ = ["RCNN", "GeneralizedRCNN", "build_detector", "summarize_detector"]
