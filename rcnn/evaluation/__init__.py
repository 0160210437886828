"""rcnn.evaluation"""
