"""Object proposals: selective search, the proposal cache, and proposal recall / MABO.

Submodules:

- :mod:`.selective_search`: ``selective_search(image, mode)``, ``PRESETS``, ``Similarity``;
- its stages: :mod:`.colorspaces`, :mod:`.felzenszwalb` (the initial segmentation, numba),
  :mod:`.features` (colour / texture histograms), :mod:`.grouping` (hierarchical grouping);
- :mod:`.cache`: ``ProposalCache`` (one ``.npy`` per image + ``params.json``), ``ProposalsReader``;
- :mod:`.compute`: selective search over a split in a process pool, into the cache;
- :mod:`.recall`: ``proposal_recall``, ``mabo``.
"""

from .cache import ProposalCache, ProposalCacheError, ProposalsReader
from .compute import compute_missing, search_params
from .recall import mabo, proposal_recall
from .selective_search import PRESETS, Similarity, selective_search

__all__ = [
    "PRESETS",
    "ProposalCache",
    "ProposalCacheError",
    "ProposalsReader",
    "Similarity",
    "compute_missing",
    "mabo",
    "proposal_recall",
    "search_params",
    "selective_search",
]
