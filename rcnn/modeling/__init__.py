"""The pieces of a region-based detector: anchors, box coding, matching, sampling, the RPN, the Fast R-CNN
head, and their losses and postprocessing (pure functions).

Submodules:

- :mod:`.anchors`: ``AnchorGenerator``; :mod:`.box_coder`: ``BoxCoder`` (deltas <-> boxes);
- :mod:`.matcher`: ``Matcher`` (IoU thresholds); :mod:`.sampler`: ``BalancedPositiveNegativeSampler``;
- :mod:`.rpn`: ``RPNHead``, ``RegionProposalNetwork``; :mod:`.roi_heads`: ``FastRCNNPredictor``,
  ``RoIHeads``;
- :mod:`.losses`: ``rpn_losses``, ``fast_rcnn_losses``; :mod:`.postprocess`: ``fast_rcnn_inference``;
- :mod:`.svd`: truncated SVD of the fully connected region head (``compress_box_head``);
- the Feature Pyramid Network detector's parts: :mod:`.fpn` (``FPN``), :mod:`.rpn_fpn` (``MultiLevelRPN``,
  with ``PyramidAnchorGenerator`` of :mod:`.anchors`), :mod:`.poolers` (``MultiScaleRoIAlign``,
  ``assign_fpn_levels``), :mod:`.box_heads` (``TwoMLPHead``).
"""

from .anchors import AnchorGenerator, PyramidAnchorGenerator
from .box_coder import BoxCoder
from .box_heads import TwoMLPHead
from .fpn import FPN
from .losses import fast_rcnn_losses, rpn_losses
from .matcher import Matcher
from .poolers import MultiScaleRoIAlign, assign_fpn_levels
from .postprocess import fast_rcnn_inference
from .roi_heads import FastRCNNPredictor, RoIHeads
from .rpn import RegionProposalNetwork, RPNHead
from .rpn_fpn import MultiLevelRPN
from .sampler import BalancedPositiveNegativeSampler
from .svd import TruncatedSVDLinear, compress_box_head, truncated_svd_linear

__all__ = [
    "FPN",
    "AnchorGenerator",
    "BalancedPositiveNegativeSampler",
    "BoxCoder",
    "FastRCNNPredictor",
    "Matcher",
    "MultiLevelRPN",
    "MultiScaleRoIAlign",
    "PyramidAnchorGenerator",
    "RPNHead",
    "RegionProposalNetwork",
    "RoIHeads",
    "TruncatedSVDLinear",
    "TwoMLPHead",
    "assign_fpn_levels",
    "compress_box_head",
    "fast_rcnn_inference",
    "fast_rcnn_losses",
    "rpn_losses",
    "truncated_svd_linear",
]
