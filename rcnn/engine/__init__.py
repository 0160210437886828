"""rcnn.engine"""
