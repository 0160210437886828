"""The pieces of a region-based detector: anchors, box coding, matching, sampling, the RPN, the Fast R-CNN
head, and their losses and postprocessing (pure functions)."""

from .anchors import AnchorGenerator
from .box_coder import BoxCoder
from .losses import fast_rcnn_losses, rpn_losses
from .matcher import Matcher
from .postprocess import fast_rcnn_inference
from .roi_heads import FastRCNNPredictor, RoIHeads
from .rpn import RegionProposalNetwork, RPNHead
from .sampler import BalancedPositiveNegativeSampler

__all__ = [
    "AnchorGenerator",
    "BalancedPositiveNegativeSampler",
    "BoxCoder",
    "FastRCNNPredictor",
    "Matcher",
    "RPNHead",
    "RegionProposalNetwork",
    "RoIHeads",
    "fast_rcnn_inference",
    "fast_rcnn_losses",
    "rpn_losses",
]
