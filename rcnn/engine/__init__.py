"""rcnn.engine: training and evaluation machinery shared by the detector and classifier tools.

- :mod:`rcnn.engine.trainer`: ``Trainer``, the iteration-based loop (exact resume, NaN stop,
  SIGINT/SIGTERM checkpoints, AMP, DDP, periodic evaluation), ``TrainingInterrupted``.
- :mod:`rcnn.engine.checkpoint`: ``Checkpointer`` (atomic ``.pth`` + ``last_checkpoint``),
  ``atomic_save``, ``load_checkpoint``, ``capture_rng_state`` / ``restore_rng_state``, ``seed_all``.
- :mod:`rcnn.utils.comm`: torchrun process group, ranks, collectives, ``select_device``,
  ``wrap_ddp``, ``move_to_device``.
- :mod:`rcnn.engine.logging`: ``setup_logger``, ``MetricsWriter`` (``metrics.jsonl`` + TensorBoard).
- :mod:`rcnn.engine.lr_scheduler`: warm-up + step / cosine / plateau schedules.
- :mod:`rcnn.engine.optim`: ``build_sgd``.

Submodules are imported explicitly (``from rcnn.engine.trainer import Trainer``) so that importing the
package stays cheap.
"""
