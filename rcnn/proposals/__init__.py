"""Object proposals: selective search (:func:`selective_search`) and proposal recall / MABO."""

from rcnn.proposals.recall import mabo, proposal_recall
from rcnn.proposals.selective_search import PRESETS, Similarity, selective_search

__all__ = ["PRESETS", "Similarity", "mabo", "proposal_recall", "selective_search"]
