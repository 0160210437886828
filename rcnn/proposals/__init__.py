"""Object proposals: selective search (:func:`selective_search`) and proposal recall / MABO."""

from rcnn.proposals.selective_search import PRESETS, Similarity, selective_search

__all__ = ["PRESETS", "Similarity", "selective_search"]
