"""rcnn.engine: training and evaluation machinery shared by the detector and classifier tools.

- :mod:`rcnn.engine.trainer`: ``Trainer``, the one iteration-based loop for detectors and classifiers
  (exact resume, NaN stop, SIGINT/SIGTERM checkpoints, AMP, DDP, periodic evaluation).
- :mod:`rcnn.engine.hooks`: ``Hook`` and the per-period work (evaluation, plateau lr, checkpoints).
- :mod:`rcnn.engine.signals`: ``TrainingInterrupted``, ``StopSignals``.
- :mod:`rcnn.engine.losses`: the loss dict's sum, cross-process average and finite check.
- :mod:`rcnn.engine.checkpoint`: ``Checkpointer`` (atomic ``.pth`` + ``last_checkpoint``).
- :mod:`rcnn.engine.logging`: ``setup_logger``, ``MetricsWriter`` (``metrics.jsonl`` + TensorBoard).
- :mod:`rcnn.engine.lr_scheduler`: warm-up + step / cosine / plateau schedules.
- :mod:`rcnn.engine.optim`: ``build_sgd``.

Submodules are imported explicitly (``from rcnn.engine.trainer import Trainer``) so that importing the
package stays cheap.
"""
