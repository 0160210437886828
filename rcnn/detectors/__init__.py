"""Detectors: Fast and Faster R-CNN (:class:`GeneralizedRCNN`), built from a config by
:func:`build_detector`."""

from .build import build_detector
from .generalized_rcnn import GeneralizedRCNN

__all__ = ["GeneralizedRCNN", "build_detector"]
