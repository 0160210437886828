"""The bottom floor: helpers that import nothing of rcnn.

Submodules:

- :mod:`.comm`: torch.distributed (ranks, collectives, DDP wrapping), device and AMP dtype;
- :mod:`.io`: the one atomic file write (``atomic_save``, ``atomic_write_text``, ``atomic_write_json``)
  and ``load_checkpoint``;
- :mod:`.rng`: ``seed_all``, ``capture_rng_state`` / ``restore_rng_state``.

The rank and collective helpers are used through their module (``from rcnn.utils import comm``); the
names below are the ones the other floors import directly.
"""

from .comm import get_rank, get_world_size, is_main_process, move_to_device, resolve_amp_dtype, select_device
from .io import atomic_save, atomic_write_json, atomic_write_text, load_checkpoint
from .rng import capture_rng_state, restore_rng_state, seed_all

__all__ = [
    "atomic_save",
    "atomic_write_json",
    "atomic_write_text",
    "capture_rng_state",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "load_checkpoint",
    "move_to_device",
    "resolve_amp_dtype",
    "restore_rng_state",
    "seed_all",
    "select_device",
]
