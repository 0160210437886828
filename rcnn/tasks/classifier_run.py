"""Epoch-based training of ImageNet-style classifiers (the pretraining detector backbones start from),
through the one :class:`rcnn.engine.trainer.Trainer`.

    run = ClassifierRun(cfg, device)            # cfg: rcnn.config_schema.ClassificationConfig
    run.resume("latest")                        # optional: or a checkpoint path
    result = run.train()                        # result.metrics: final val errors, data-time share, ...

The classifier is wrapped in :class:`~rcnn.tasks.classification.ClassifierLoss`; epochs are
``iters_per_epoch`` iterations (the length of the epoch loader), and the per-epoch work is hooks, in this
order: the epoch's training statistics, centre-crop validation, the plateau schedule, one line in
``metrics.jsonl`` / TensorBoard (keyed ``"epoch"``), and ``checkpoint_<epoch>.pth``. At the end: 10-crop
validation (``test.ten_crop``), ``model_final.pth`` and ``final_metrics.json``.

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
  ``last_checkpoint`` pointer; only the newest one this run wrote is kept. They hold the trainer's state
  (``model, optimizer, scheduler, scaler, iteration, data, rng`` of every rank) and ``name,
  num_classes, options, classes, epoch``. ``model_final.pth`` holds ``model, name, num_classes, options,
  classes`` and loads as a detector backbone with ``backbones.build_backbone(name, weights=path,
  **options)``.
* Resume is exact: each rank restores its own RNG state and the data stream continues at the next batch.
* SIGINT/SIGTERM: the current iteration finishes and ``checkpoint_<epoch>_interrupted.pth`` is saved
  (``epoch`` = the completed epochs); resuming continues with the next iteration. Exit code 128 + signal.
* A non-finite loss raises ``FloatingPointError`` naming the epoch, iteration and loss.
* ``data_time_share``: the fraction of training wall time spent waiting for the next batch (logged per
  epoch and over the run in the final metrics).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

import backbones
from rcnn.config import ConfigError
from rcnn.config_schema import ClassificationConfig
from rcnn.data.errors import DatasetError
from rcnn.data.samplers import InferenceSampler, KeyedSampler
from rcnn.engine.hooks import Hook, PeriodicCheckpoint, PeriodicEval, PlateauLR
from rcnn.engine.logging import MetricsWriter
from rcnn.engine.lr_scheduler import WarmupOnly, build_lr_scheduler
from rcnn.engine.optim import build_sgd
from rcnn.engine.trainer import Trainer
from rcnn.evaluation.classification import evaluate_classifier
from rcnn.tasks.classification import (
    ClassifierLoss,
    EpochSampler,
    EpochStream,
    build_classification_datasets,
    build_classification_loader,
)
from rcnn.utils.comm import all_reduce_dict, get_rank, get_world_size, is_main_process
from rcnn.utils.io import CheckpointError, atomic_save, atomic_write_text
from rcnn.utils.rng import seed_all

logger = logging.getLogger(__name__)

WARMUP_FACTOR = 0.001  # lr factor at the first warm-up iteration


@dataclass
class TrainResult:
    """What :meth:`ClassifierRun.train` returns."""

    metrics: dict[str, float] = field(default_factory=dict)  # final evaluation + timing
    epoch: int = 0  # completed epochs
    history: list[dict[str, float]] = field(default_factory=list)  # this run's epoch lines


class EpochStats(Hook):
    """Sums the main loss, top-1 hits, images and times of an epoch's iterations (this process);
    :meth:`pop` reduces them over processes into the epoch's training numbers."""

    def __init__(self, adapter: ClassifierLoss) -> None:
        self.adapter = adapter
        self.train_time = self.data_time = 0.0  # over the run
        self._reset()

    def _reset(self) -> None:
        self.sums = {"loss": 0.0, "correct": 0.0, "count": 0.0}
        self.images = 0
        self.epoch_data_time = self.epoch_time = 0.0

    def after_step(self, trainer: Trainer) -> None:
        n = self.adapter.count
        self.sums["loss"] += trainer.last_losses["loss_cls"] * n
        self.sums["correct"] += float(self.adapter.correct)
        self.sums["count"] += n
        self.images += n
        self.epoch_data_time += trainer.last_data_time
        self.epoch_time += trainer.last_iter_time

    def pop(self, trainer: Trainer) -> dict[str, float]:
        """``train_loss, train_top1_err, lr, images_per_s, data_time_share, epoch_time_s``; resets."""
        totals = all_reduce_dict(
            {k: torch.tensor(v, dtype=torch.float64) for k, v in self.sums.items()}, average=False
        )
        count = max(float(totals["count"]), 1.0)
        wall = max(self.epoch_time, 1e-9)
        out = {
            "train_loss": float(totals["loss"]) / count,
            "train_top1_err": 1.0 - float(totals["correct"]) / count,
            "lr": trainer.lr,
            "images_per_s": self.images * trainer.world_size / wall,
            "data_time_share": self.epoch_data_time / wall,
            "epoch_time_s": self.epoch_time,
        }
        self.train_time += self.epoch_time
        self.data_time += self.epoch_data_time
        self._reset()
        return out


class EpochLog(Hook):
    """At each epoch's end: the training numbers and the validation results as one ``metrics.jsonl`` line
    (``"epoch"``: completed epochs) and one log line."""

    def __init__(self, run: ClassifierRun) -> None:
        self.run = run

    def after_step(self, trainer: Trainer) -> None:
        n = self.run.iters_per_epoch
        if trainer.iter % n:
            return
        epoch = trainer.iter // n
        metrics = {**self.run.stats.pop(trainer), **self.run.evaluation.results}
        self.run.writer.write(metrics, step=epoch)
        self.run.history.append({"epoch": epoch, **metrics})
        m = metrics
        logger.info(
            "epoch %d/%d: train loss %.4f top-1 err %.2f%% | val top-1 err %.2f%% top-5 err %.2f%% "
            "loss %.4f | lr %.3g | %.0f img/s | data wait %.0f%% of %.1f s",
            epoch, self.run.cfg.solver.epochs, m["train_loss"], 100 * m["train_top1_err"],
            100 * m["val_top1_err"], 100 * m["val_top5_err"], m["val_loss"], m["lr"], m["images_per_s"],
            100 * m["data_time_share"], m["epoch_time_s"],
        )  # fmt: skip


class ClassifierRun:
    """Trains ``cfg.model`` on ``cfg.data`` following ``cfg.solver`` (see the module docstring).

    Every process of a ``torchrun`` launch builds one; only the main process writes files. ``model`` is
    the classifier itself (``trainer.model`` is the DDP-wrapped loss adapter around it).
    """

    def __init__(self, cfg: ClassificationConfig, device: torch.device, *, progress: bool = True) -> None:
        self.cfg = cfg
        self.device = device
        self.output_dir = cfg.output.dir
        s = cfg.solver
        world, rank = get_world_size(), get_rank()
        if s.batch_size % world:
            raise ConfigError(f"solver.batch_size={s.batch_size} is not divisible by the {world} processes")
        self.batch_size = s.batch_size // world
        seed_all(s.seed + rank)  # DDP broadcasts rank 0's initial weights

        self.train_set, self.val_set, self.val10_set = build_classification_datasets(cfg)
        for dataset in {
            d.root: d for d in (self.train_set, self.val_set, self.val10_set) if d is not None
        }.values():
            dataset.check_images()  # every image file, before training starts (no decoding)
        self.classes = list(self.train_set.classes)
        num_classes = cfg.model.num_classes or len(self.classes)
        if num_classes != len(self.classes):
            raise ConfigError(
                f"model.num_classes={num_classes} but {cfg.data.root} has {len(self.classes)} class folders"
            )
        self.num_classes = num_classes
        model = backbones.build_classifier(cfg.model.name, num_classes=num_classes, **cfg.model.options)
        if cfg.model.weights:
            try:
                backbones.load_pretrained(
                    model,
                    cfg.model.weights,
                    key="model.weights",
                    alternatives=backbones.related_networks(cfg.model.name),
                )
            except FileNotFoundError:
                raise ConfigError(f"model.weights: file not found: {cfg.model.weights}") from None
            except backbones.WeightsError as e:  # the message starts with the key
                raise CheckpointError(str(e)) from None
        self.model = model.to(device)

        # Keys carry each draw's augmentation seed (seed, epoch, rank, position): exact resume with workers.
        shuffled = DistributedSampler(
            self.train_set, num_replicas=world, rank=rank, shuffle=True, seed=s.seed
        )
        sampler = EpochSampler(KeyedSampler(shuffled, seed=s.seed, rank=rank))
        # Drop the last partial batch (a batch of one breaks batch norm) unless it is the only one.
        drop_last = len(sampler) >= self.batch_size
        loader = self._loader(self.train_set, sampler, self.batch_size, drop_last)
        if len(loader) == 0:
            raise DatasetError("the training split is empty", file=cfg.data.root)
        self.stream = EpochStream(loader, sampler, seed=s.seed, rank=rank)
        self.iters_per_epoch = n = self.stream.iters_per_epoch

        optimizer = build_sgd(self.model, s.base_lr, s.momentum, s.weight_decay, nesterov=s.nesterov)
        scheduler = build_lr_scheduler(
            optimizer,
            s.lr_schedule,
            total_steps=s.epochs * n,
            steps=[e * n for e in s.steps],
            gamma=s.gamma,
            warmup_steps=s.warmup_epochs * n,
            warmup_factor=WARMUP_FACTOR,
            patience=s.plateau_patience,
        )
        plateau = s.lr_schedule == "plateau"
        adapter = ClassifierLoss(
            self.model, nn.CrossEntropyLoss(label_smoothing=s.label_smoothing), s.aux_loss_weight
        )
        self.stats = EpochStats(adapter)
        self.evaluation = PeriodicEval(n, lambda trainer: self._val_metrics())
        hooks: list[Hook] = [self.stats, self.evaluation]
        if plateau:
            hooks.append(PlateauLR(scheduler, n, lambda: self.evaluation.results["val_top1_err"]))
        hooks += [EpochLog(self), PeriodicCheckpoint(n, lambda it: f"checkpoint_{it // n:04d}")]
        self.trainer = Trainer(
            adapter,
            self.stream,
            sampler=self.stream,
            optimizer=optimizer,
            scheduler=WarmupOnly(scheduler) if plateau else scheduler,
            max_iter=s.epochs * n,
            output_dir=self.output_dir,
            checkpoint_period=0,
            log_period=s.log_period,
            clip_grad_norm=s.clip_grad_norm,
            amp=s.amp,  # bf16 on the CPU, fp16 on CUDA
            device=device,
            hooks=hooks,
            progress=progress,
            iters_per_epoch=n,
            saved_model=self.model,
            checkpoint_fields=lambda trainer: {**self.model_info(weights=False), "epoch": trainer.iter // n},
            checkpoint_name=self._checkpoint_name,
            write_metrics=False,
        )
        self.writer: MetricsWriter | None = None
        self.history: list[dict[str, float]] = []
        self._resumed = False

    def _checkpoint_name(self, iteration: int, kind: str) -> str | None:
        """Epoch checkpoints come from the hook; the trainer names only an interrupted one."""
        if kind == "interrupted":
            return f"checkpoint_{iteration // self.iters_per_epoch:04d}_interrupted"
        return None

    def _loader(self, dataset: Dataset, sampler: Any, batch_size: int, drop_last: bool = False) -> DataLoader:
        return build_classification_loader(
            dataset,
            sampler,
            batch_size,
            num_workers=self.cfg.data.num_workers,
            drop_last=drop_last,
            pin_memory=self.device.type == "cuda",
        )

    def model_info(self, *, weights: bool = True) -> dict[str, Any]:
        """``{"model": state_dict, "name", "num_classes", "options", "classes"}`` (``model_final.pth``)."""
        info = {"model": self.model.state_dict()} if weights else {}
        info.update(
            name=self.cfg.model.name,
            num_classes=self.num_classes,
            options=dict(self.cfg.model.options),
            classes=list(self.classes),
        )
        return info

    def resume(self, path_or_latest: str) -> int:
        """Load a checkpoint (``"latest"``: the one ``last_checkpoint`` names) and continue with the
        iteration after it. A missing file raises ``FileNotFoundError``. Returns the completed epochs."""
        path = self.trainer.checkpointer.resolve(path_or_latest)
        state = self.trainer.checkpointer.load(path)
        for key, mine in (("name", self.cfg.model.name), ("num_classes", self.num_classes)):
            if state.get(key) != mine:
                raise ValueError(f"{path}: checkpoint {key}={state.get(key)!r}, config has {mine!r}")
        self.trainer.load_state_dict(state, path)
        self._resumed = True
        epoch = self.trainer.iter // self.iters_per_epoch
        logger.info("resumed from %s: continuing in epoch %d", path, epoch + 1)
        return epoch

    def evaluate(self, ten_crop: bool = False) -> dict[str, float]:
        """Validation errors and loss of the current model (centre crop, or 10-crop)."""
        dataset = self.val10_set if ten_crop else self.val_set
        if dataset is None:
            raise ValueError("10-crop evaluation needs test.ten_crop=true")
        loader = self._loader(dataset, InferenceSampler(len(dataset)), self.cfg.test.batch_size)
        return evaluate_classifier(self.model, loader, self.device, ten_crop)

    def _val_metrics(self) -> dict[str, float]:
        return {f"val_{k}": v for k, v in self.evaluate().items()}

    def train(self) -> TrainResult:
        """Run the remaining epochs; see the module docstring for what is written.

        Raises :class:`~rcnn.engine.trainer.TrainingInterrupted` after SIGINT/SIGTERM (checkpoint saved;
        ``exit_code`` 128 + signal) and ``FloatingPointError`` on a non-finite loss (no checkpoint).
        """
        logger.info(
            "training %s (%d classes, %.2fM parameters) on %d images, %d iterations/epoch, %d process(es)",
            self.cfg.model.name,
            self.num_classes,
            sum(p.numel() for p in self.model.parameters()) / 1e6,
            len(self.train_set),
            self.iters_per_epoch,
            get_world_size(),
        )
        done = self.trainer.iter // self.iters_per_epoch
        purge_after = done if self._resumed else 0  # a fresh run starts a fresh metrics file
        with MetricsWriter(self.output_dir, step_key="epoch", purge_after=purge_after) as self.writer:
            self.trainer.train()
            epoch = self.trainer.iter // self.iters_per_epoch
            metrics = self._final_metrics()
            self.writer.write({k: v for k, v in metrics.items() if k.startswith("val10_")}, epoch)
        if is_main_process():
            atomic_save(self.model_info(), os.path.join(self.output_dir, "model_final.pth"))
            atomic_write_text(
                json.dumps({"epoch": epoch, **metrics}, indent=2) + "\n",
                os.path.join(self.output_dir, "final_metrics.json"),
            )
        logger.info("final: %s", ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        return TrainResult(metrics=metrics, epoch=epoch, history=list(self.history))

    def _final_metrics(self) -> dict[str, float]:
        """Centre-crop (re-evaluated when no epoch ran here) and 10-crop errors, and timing."""
        final = dict(self.evaluation.results or self._val_metrics())
        if self.val10_set is not None:
            final.update({f"val10_{k}": v for k, v in self.evaluate(ten_crop=True).items()})
        train_time = self.stats.train_time
        final["train_time_s"] = train_time
        final["data_time_share"] = self.stats.data_time / train_time if train_time > 0 else 0.0
        return final
