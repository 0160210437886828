"""The bottom floor: helpers that import nothing of rcnn.

- :mod:`rcnn.utils.comm`: torch.distributed (ranks, collectives, DDP wrapping), device and AMP dtype;
- :mod:`rcnn.utils.io`: the one atomic file write (``atomic_save``, ``atomic_write_text``,
  ``atomic_write_json``) and ``load_checkpoint``;
- :mod:`rcnn.utils.rng`: ``seed_all``, ``capture_rng_state`` / ``restore_rng_state``.
"""
