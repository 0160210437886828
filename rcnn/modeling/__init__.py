"""The pieces of a region-based detector: anchors, box coding, matching, sampling, the RPN, the Fast R-CNN
head, and their losses and postprocessing (pure functions).

Submodules:

- :mod:`.anchors`: ``AnchorGenerator``; :mod:`.box_coder`: ``BoxCoder`` (deltas <-> boxes);
- :mod:`.matcher`: ``Matcher`` (IoU thresholds); :mod:`.sampler`: ``BalancedPositiveNegativeSampler``;
- :mod:`.rpn`: ``RPNHead``, ``RegionProposalNetwork``; :mod:`.roi_heads`: ``FastRCNNPredictor``,
  ``RoIHeads``;
- :mod:`.losses`: ``rpn_losses``, ``fast_rcnn_losses``; :mod:`.postprocess`: ``fast_rcnn_inference``;
- :mod:`.svd`: truncated SVD of the fully connected region head (``compress_box_head``).
"""

from .anchors import AnchorGenerator
from .box_coder import BoxCoder
from .losses import fast_rcnn_losses, rpn_losses
from .matcher import Matcher
from .postprocess import fast_rcnn_inference
from .roi_heads import FastRCNNPredictor, RoIHeads
from .rpn import RegionProposalNetwork, RPNHead
from .sampler import BalancedPositiveNegativeSampler
from .svd import TruncatedSVDLinear, compress_box_head, truncated_svd_linear

__all__ = [
    "AnchorGenerator",
    "BalancedPositiveNegativeSampler",
    "BoxCoder",
    "FastRCNNPredictor",
    "Matcher",
    "RPNHead",
    "RegionProposalNetwork",
    "RoIHeads",
    "TruncatedSVDLinear",
    "compress_box_head",
    "fast_rcnn_inference",
    "fast_rcnn_losses",
    "rpn_losses",
    "truncated_svd_linear",
]
