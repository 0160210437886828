"""rcnn.detectors"""
