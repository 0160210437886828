"""rcnn: region-based object detection (R-CNN, Fast R-CNN, Faster R-CNN) on ILSVRC-era backbones."""

__version__ = "0.1.0"
