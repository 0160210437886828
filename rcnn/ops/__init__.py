"""Detection ops: box utilities, NMS (hard and soft), RoI pooling and RoIAlign.

Submodules:

- :mod:`.boxes`: conversions, areas, IoU, clipping, NMS / batched NMS (torchvision's kernels);
- :mod:`.soft_nms`: Soft-NMS (linear and Gaussian), per class;
- :mod:`.roi`: ``RoIPool`` / ``RoIAlign`` as functions and modules;
- :mod:`.roi_align_nhwc`: a channels-last CPU forward kernel of RoIAlign (numba);
- :mod:`.roi_align_separable`: the CPU RoIAlign whose backward runs as two small matrix products.

The two numba modules are not re-exported: :class:`RoIAlign` imports them on first CPU use, so that
importing ``rcnn.ops`` does not import numba.
"""

from .boxes import (
    batched_nms,
    box_area,
    box_cxcywh_to_xyxy,
    box_iou,
    box_xywh_to_xyxy,
    box_xyxy_to_cxcywh,
    box_xyxy_to_xywh,
    clip_boxes_to_image,
    nms,
    remove_small_boxes,
)
from .roi import RoIAlign, RoIPool, roi_align, roi_pool
from .soft_nms import batched_soft_nms, soft_nms

__all__ = [
    "RoIAlign",
    "RoIPool",
    "batched_nms",
    "batched_soft_nms",
    "box_area",
    "box_cxcywh_to_xyxy",
    "box_iou",
    "box_xywh_to_xyxy",
    "box_xyxy_to_cxcywh",
    "box_xyxy_to_xywh",
    "clip_boxes_to_image",
    "nms",
    "remove_small_boxes",
    "roi_align",
    "roi_pool",
    "soft_nms",
]
