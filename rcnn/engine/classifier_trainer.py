"""Epoch-based training of ImageNet-style classifiers: the pretraining that detector backbones start from.

    trainer = ClassifierTrainer(cfg, device)        # cfg: rcnn.config_schema.ClassificationConfig
    trainer.resume("latest")                        # optional: or a checkpoint path
    result = trainer.train()                        # result.metrics: final val errors, data-time share, ...

Per epoch: SGD (momentum, optional Nesterov, weight decay) over an ImageFolder training split with a
DistributedSampler (one process, or one per device under ``torchrun``), centre-crop validation, a
checkpoint, one line in ``metrics.jsonl`` / TensorBoard. At the end: 10-crop validation
(``test.ten_crop``), ``model_final.pth`` and ``final_metrics.json``.

Details worth knowing:

* ``solver.batch_size`` is the total over all processes (each takes ``batch_size / world_size``).
* The learning rate is set per iteration: warm-up (``warmup_epochs``, linear from 0.001x) and the
  ``step``/``cosine`` schedules are counted in iterations (``steps`` are epochs, converted), so resuming
  needs the same data, batch size and world size. ``plateau`` divides the lr by ``1/gamma`` when the
  validation top-1 error has not improved for ``plateau_patience`` epochs (checked once per epoch).
* GoogLeNet-style models return ``(logits, aux1, aux2)`` in training mode: the loss is
  ``CE(logits) + aux_loss_weight * (CE(aux1) + CE(aux2))`` (0.3 in the paper); reported train loss and
  error are those of the main classifier.
* Checkpoints ``checkpoint_<epoch>.pth`` (``epoch`` = completed epochs) are written atomically with a
  ``last_checkpoint`` pointer; only the newest one this run wrote is kept. They hold ``model, name,
  num_classes, options, classes, optimizer, scheduler, scaler, epoch, rng``. ``model_final.pth`` holds
  ``model, name, num_classes, options, classes`` and loads as a detector backbone with
  ``backbones.build_backbone(name, weights=path, **options)``.
* Shuffling (DistributedSampler ``seed + epoch``) and the augmentation of every sample
  (:class:`~rcnn.data.samplers.KeyedSampler`: seeded by seed, epoch, rank and position) depend only on the
  seed and the epoch, and the RNG state is restored on resume, so a resumed run sees the epochs an
  uninterrupted one would have, with any ``data.num_workers``.
* SIGINT/SIGTERM: the current iteration finishes, a checkpoint ``checkpoint_<epoch>_interrupted.pth``
  is saved with the weights reached so far but ``epoch`` = the last *completed* epoch, so resuming re-runs
  the interrupted epoch from its start (its partial updates are kept, not undone). A second signal acts
  as usual (stops immediately).
* A non-finite loss raises ``FloatingPointError`` naming the epoch, iteration and loss.
* ``data_time_share``: the fraction of training wall time spent waiting for the next batch (logged per
  epoch and over the run in the final metrics).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from rcnn.config_schema import ClassificationConfig
from rcnn.data.samplers import KeyedSampler
from rcnn.engine.checkpoint import LAST_CHECKPOINT, Checkpointer
from rcnn.utils.io import atomic_save, atomic_write_text
from rcnn.utils.rng import capture_rng_state, restore_rng_state, seed_all
from rcnn.tasks.classification import (
    build_classification_datasets,
    build_classification_loader,
    classifier_step,
)
from rcnn.utils.comm import (
    all_reduce_dict,
    get_rank,
    get_world_size,
    is_main_process,
    unwrap_model,
    wrap_ddp,
)
from rcnn.engine.logging import MetricsWriter
from rcnn.engine.lr_scheduler import build_lr_scheduler, current_lr
from rcnn.engine.optim import build_sgd
from rcnn.engine.trainer import TrainingInterrupted, resolve_amp_dtype
from rcnn.evaluation.classification import evaluate_classifier

logger = logging.getLogger(__name__)

WARMUP_FACTOR = 0.001  # lr factor at the first warm-up iteration


@dataclass
class TrainResult:
    """What :meth:`ClassifierTrainer.train` returns."""

    metrics: dict[str, float] = field(default_factory=dict)  # final evaluation + timing
    epoch: int = 0  # completed epochs


class ClassifierTrainer:
    """Trains ``cfg.model`` on ``cfg.data`` following ``cfg.solver`` (see the module docstring).

    Every process of a ``torchrun`` launch builds one; only the main process writes files.
    """

    def __init__(self, cfg: ClassificationConfig, device: torch.device, *, progress: bool = True) -> None:
        import backbones

        self.cfg = cfg
        self.device = device
        self.progress = progress and is_main_process()
        self.output_dir = cfg.output.dir
        s = cfg.solver
        world = get_world_size()
        if s.batch_size % world:
            raise ValueError(f"solver.batch_size={s.batch_size} is not divisible by the {world} processes")
        self.batch_size = s.batch_size // world
        seed_all(s.seed + get_rank())  # DDP broadcasts rank 0's initial weights

        self.train_set, self.val_set, self.val10_set = build_classification_datasets(cfg)
        self.classes = list(self.train_set.classes)
        num_classes = cfg.model.num_classes or len(self.classes)
        if num_classes != len(self.classes):
            raise ValueError(
                f"model.num_classes={num_classes} but {cfg.data.root} has {len(self.classes)} class folders"
            )
        self.num_classes = num_classes

        model = backbones.build_classifier(cfg.model.name, num_classes=num_classes, **cfg.model.options)
        if cfg.model.weights:
            backbones.load_pretrained(model, cfg.model.weights)
        self.model = wrap_ddp(model.to(device), device)

        self.train_sampler = KeyedSampler(  # augmentation seeded by (seed, epoch, rank, position)
            DistributedSampler(
                self.train_set, num_replicas=world, rank=get_rank(), shuffle=True, seed=s.seed
            ),
            seed=s.seed,
        )
        # Drop the last partial batch (a batch of one breaks batch norm) unless it is the only one.
        drop_last = len(self.train_sampler) >= self.batch_size
        self.train_loader = self._loader(self.train_set, self.train_sampler, self.batch_size, drop_last)
        if len(self.train_loader) == 0:
            raise ValueError(f"{cfg.data.root}: the training split is empty")
        self.iters_per_epoch = len(self.train_loader)

        self.optimizer = build_sgd(self.model, s.base_lr, s.momentum, s.weight_decay, nesterov=s.nesterov)
        n = self.iters_per_epoch
        self.scheduler = build_lr_scheduler(
            self.optimizer,
            s.lr_schedule,
            total_steps=s.epochs * n,
            steps=[e * n for e in s.steps],
            gamma=s.gamma,
            warmup_steps=s.warmup_epochs * n,
            warmup_factor=WARMUP_FACTOR,
            patience=s.plateau_patience,
        )
        self.criterion = nn.CrossEntropyLoss(label_smoothing=s.label_smoothing)
        self.amp_dtype = resolve_amp_dtype(s.amp, device, None)  # bf16 on the CPU, fp16 on CUDA
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.checkpointer = Checkpointer(self.output_dir, enabled=is_main_process())
        self.start_epoch = 0
        self._resumed = False
        self._stop_signal = 0
        self._epoch_iters = 0  # iterations done in the current epoch
        self._last_saved = ""  # the newest epoch checkpoint this run wrote
        self._data_time = 0.0
        self._train_time = 0.0

    # ------------------------------------------------------------------------------------------ helpers

    def _loader(self, dataset: Dataset, sampler: Any, batch_size: int, drop_last: bool = False) -> DataLoader:
        return build_classification_loader(
            dataset,
            sampler,
            batch_size,
            num_workers=self.cfg.data.num_workers,
            drop_last=drop_last,
            pin_memory=self.device.type == "cuda",
        )

    def _val_loader(self, dataset: Dataset) -> DataLoader:
        from rcnn.data.samplers import InferenceSampler

        return self._loader(dataset, InferenceSampler(len(dataset)), self.cfg.test.batch_size)

    def _checkpoint_state(self, epoch: int) -> dict[str, Any]:
        return {
            **self.model_info(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "rng": capture_rng_state(),
        }

    def model_info(self) -> dict[str, Any]:
        """``{"model": state_dict, "name", "num_classes", "options", "classes"}`` (``model_final.pth``)."""
        return {
            "model": unwrap_model(self.model).state_dict(),
            "name": self.cfg.model.name,
            "num_classes": self.num_classes,
            "options": dict(self.cfg.model.options),
            "classes": list(self.classes),
        }

    def resume(self, path_or_latest: str) -> int:
        """Load a checkpoint (``"latest"``: the one ``last_checkpoint`` names) and continue after its
        epoch. A missing file raises ``FileNotFoundError``. Returns the epoch training restarts at."""
        path = self.checkpointer.resolve(path_or_latest)
        state = self.checkpointer.load(path)
        for key, mine in (("name", self.cfg.model.name), ("num_classes", self.num_classes)):
            if state.get(key) != mine:
                raise ValueError(f"{path}: checkpoint {key}={state.get(key)!r}, config has {mine!r}")
        unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state.get("scaler", {}))
        restore_rng_state(state["rng"])
        self.start_epoch = int(state["epoch"])
        self._resumed = True
        logger.info("resumed from %s: continuing at epoch %d", path, self.start_epoch + 1)
        return self.start_epoch

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal:  # second signal: stop now, without a checkpoint
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} received twice: aborting")
        logger.warning(
            "%s received: stopping after the current iteration with a checkpoint (send again to abort)",
            signal.Signals(signum).name,
        )
        self._stop_signal = signum

    @contextlib.contextmanager
    def _signal_handlers(self) -> Iterator[None]:
        """SIGINT/SIGTERM become a stop request while training (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _should_stop(self) -> bool:
        if get_world_size() == 1:
            return self._stop_signal != 0
        flags = all_reduce_dict({"stop": torch.tensor(float(self._stop_signal))}, average=False)
        return float(flags["stop"]) > 0

    # --------------------------------------------------------------------------------------------- loop

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training split. Returns train loss/error, lr, throughput and data share."""
        s = self.cfg.solver
        self.model.train()
        self.train_sampler.set_epoch(epoch)
        # The augmentations follow the sample keys (KeyedSampler); the data workers' own seeds, for any
        # other randomness in them, depend on (seed, epoch) only as well.
        seed = (s.seed * 1009 + get_rank()) * 100003 + epoch
        self.train_loader.generator = torch.Generator().manual_seed(seed)
        per_iter_lr = s.lr_schedule != "plateau"
        sums = {"loss": 0.0, "correct": 0.0, "count": 0.0}
        data_time = step_time = 0.0
        images_seen = 0
        bar = tqdm(
            total=self.iters_per_epoch,
            desc=f"epoch {epoch + 1}/{s.epochs}",
            disable=not self.progress,
            dynamic_ncols=True,
            leave=False,
        )
        start = end = time.perf_counter()
        for it, (images, targets) in enumerate(self.train_loader):
            data_time += time.perf_counter() - end
            images = images.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            main_loss, logits = classifier_step(
                self.model, images, targets,
                criterion=self.criterion, optimizer=self.optimizer, scaler=self.scaler,
                amp_dtype=self.amp_dtype if s.amp else None, aux_weight=s.aux_loss_weight,
                clip_grad_norm=s.clip_grad_norm,
                where=f" at epoch {epoch + 1}, iteration {it + 1}/{self.iters_per_epoch}",
            )  # fmt: skip
            lr = current_lr(self.optimizer)
            if per_iter_lr or self.scheduler.last_epoch < self.scheduler.warmup_steps:
                self.scheduler.step()

            n = targets.shape[0]
            sums["loss"] += float(main_loss) * n
            sums["correct"] += float((logits.argmax(1) == targets).sum())
            sums["count"] += n
            images_seen += n
            end = time.perf_counter()
            step_time = end - start
            if self.progress and ((it + 1) % s.log_period == 0 or it + 1 == self.iters_per_epoch):
                bar.set_postfix(
                    loss=f"{sums['loss'] / sums['count']:.3f}",
                    lr=f"{lr:.2g}",
                    img_s=f"{images_seen * get_world_size() / step_time:.0f}",
                )
            bar.update(1)
            self._epoch_iters = it + 1
            if self._should_stop():
                break
        bar.close()
        self._data_time += data_time
        self._train_time += step_time
        totals = all_reduce_dict(
            {k: torch.tensor(v, dtype=torch.float64) for k, v in sums.items()}, average=False
        )
        count = max(float(totals["count"]), 1.0)
        return {
            "train_loss": float(totals["loss"]) / count,
            "train_top1_err": 1.0 - float(totals["correct"]) / count,
            "lr": lr,
            "images_per_s": images_seen * get_world_size() / max(step_time, 1e-9),
            "data_time_share": data_time / max(step_time, 1e-9),
            "epoch_time_s": step_time,
        }

    def evaluate(self, ten_crop: bool = False) -> dict[str, float]:
        """Validation errors and loss of the current model (centre crop, or 10-crop)."""
        dataset = self.val10_set if ten_crop else self.val_set
        if dataset is None:
            raise ValueError("10-crop evaluation needs test.ten_crop=true")
        return evaluate_classifier(unwrap_model(self.model), self._val_loader(dataset), self.device, ten_crop)

    def train(self) -> TrainResult:
        """Run the remaining epochs; see the module docstring for what is written.

        Raises :class:`~rcnn.engine.trainer.TrainingInterrupted` after SIGINT/SIGTERM (checkpoint saved;
        ``exit_code`` 128 + signal) and ``FloatingPointError`` on a non-finite loss (no checkpoint).
        """
        s = self.cfg.solver
        logger.info(
            "training %s (%d classes, %.2fM parameters) on %d images, %d iterations/epoch, %d process(es)",
            self.cfg.model.name,
            self.num_classes,
            sum(p.numel() for p in self.model.parameters()) / 1e6,
            len(self.train_set),
            self.iters_per_epoch,
            get_world_size(),
        )
        result = TrainResult(epoch=self.start_epoch)
        purge_after = self.start_epoch if self._resumed else 0  # a fresh run starts a fresh metrics file
        with MetricsWriter(self.output_dir, step_key="epoch", purge_after=purge_after) as writer:
            with self._signal_handlers():
                for epoch in range(self.start_epoch, s.epochs):
                    metrics = self.train_one_epoch(epoch)
                    if self._should_stop():
                        path = self._save(f"checkpoint_{epoch:04d}_interrupted", epoch)
                        logger.warning("interrupted in epoch %d (resuming re-runs it)", epoch + 1)
                        iteration = epoch * self.iters_per_epoch + self._epoch_iters
                        raise TrainingInterrupted(self._stop_signal or signal.SIGTERM, iteration, path)
                    val = {f"val_{k}": v for k, v in self.evaluate().items()}
                    if (
                        s.lr_schedule == "plateau"
                        and self.scheduler.last_epoch >= self.scheduler.warmup_steps
                    ):
                        self.scheduler.step(val["val_top1_err"])
                    metrics.update(val)
                    writer.write(metrics, step=epoch + 1)
                    self._log_epoch(epoch, metrics)
                    self._save_epoch(epoch + 1)
                    result.epoch, result.metrics = epoch + 1, val
            result.metrics = self._final_metrics(result.metrics)
            writer.write({k: v for k, v in result.metrics.items() if k.startswith("val10_")}, result.epoch)
        if is_main_process():
            atomic_save(self.model_info(), os.path.join(self.output_dir, "model_final.pth"))
            atomic_write_text(
                json.dumps({"epoch": result.epoch, **result.metrics}, indent=2) + "\n",
                os.path.join(self.output_dir, "final_metrics.json"),
            )
        logger.info("final: %s", ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items()))
        return result

    def _save(self, filename: str, epoch: int) -> str:
        """Write ``<output_dir>/<filename>.pth`` atomically, then point ``last_checkpoint`` at it (main
        process only). ``Checkpointer.save(name, **state)`` cannot take the format's ``name`` entry."""
        path = self.checkpointer.path(filename)
        if is_main_process():
            atomic_save(self._checkpoint_state(epoch), path)
            atomic_write_text(os.path.basename(path) + "\n", os.path.join(self.output_dir, LAST_CHECKPOINT))
            logger.info("saved checkpoint %s", path)
        return path

    def _save_epoch(self, epoch: int) -> None:
        """Checkpoint after ``epoch`` completed epochs; the previous one this run wrote is removed."""
        path = self._save(f"checkpoint_{epoch:04d}", epoch)
        if self._last_saved and self._last_saved != path and os.path.isfile(self._last_saved):
            os.remove(self._last_saved)
        self._last_saved = path

    def _log_epoch(self, epoch: int, m: dict[str, float]) -> None:
        logger.info(
            "epoch %d/%d: train loss %.4f top-1 err %.2f%% | val top-1 err %.2f%% top-5 err %.2f%% "
            "loss %.4f | lr %.3g | %.0f img/s | data wait %.0f%% of %.1f s",
            epoch + 1,
            self.cfg.solver.epochs,
            m["train_loss"],
            100 * m["train_top1_err"],
            100 * m["val_top1_err"],
            100 * m["val_top5_err"],
            m["val_loss"],
            m["lr"],
            m["images_per_s"],
            100 * m["data_time_share"],
            m["epoch_time_s"],
        )

    def _final_metrics(self, last_val: dict[str, float]) -> dict[str, float]:
        """Centre-crop (re-evaluated when no epoch ran here) and 10-crop errors, and timing."""
        val = last_val or {f"val_{k}": v for k, v in self.evaluate().items()}
        final = dict(val)
        if self.val10_set is not None:
            final.update({f"val10_{k}": v for k, v in self.evaluate(ten_crop=True).items()})
        final["train_time_s"] = self._train_time
        final["data_time_share"] = self._data_time / self._train_time if self._train_time > 0 else 0.0
        return final
