"""rcnn.data"""
