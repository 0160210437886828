"""rcnn.proposals"""
