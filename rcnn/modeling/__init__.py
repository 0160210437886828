"""rcnn.modeling"""
