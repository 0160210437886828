"""The iteration-based training loop shared by every model that returns a dict of losses.

    trainer = Trainer(model, loader, sampler=loader.batch_sampler, optimizer=build_sgd(model, 0.01),
                      scheduler=build_warmup_multistep_lr(...), max_iter=9000, output_dir="outputs/run")
    # or: Trainer.from_config(cfg.solver, model, loader, sampler=loader.batch_sampler, output_dir=...)
    if args.resume:
        trainer.resume("latest")           # or a checkpoint path; missing -> FileNotFoundError
    try:
        trainer.train()
    except TrainingInterrupted as e:       # SIGINT / SIGTERM: a checkpoint was saved first
        print(e); sys.exit(e.exit_code)

``model(images, targets)`` must return a dict of scalar loss tensors; their sum is minimised. Each
iteration: move the batch to the device, forward under autocast (when ``amp``), reduce the losses across
processes (for logging, the NaN check and to agree on stopping), backward, optional gradient clipping,
optimizer and scheduler step, then the hooks (:mod:`rcnn.engine.hooks`) and callbacks. Every
``log_period`` iterations the window averages go to ``metrics.jsonl`` / TensorBoard (rank 0); every
``checkpoint_period`` iterations and at the end a checkpoint is written atomically and
``last_checkpoint`` updated. Classifiers train through the same loop (:mod:`rcnn.tasks.classifier_run`).

Exact resume: the checkpoint holds the model, optimizer, scheduler, GradScaler, iteration, the data
stream position (``sampler.state_after(batches used)``) and the RNG states of every rank, restored right
after the data iterator is created, so the resumed run computes the same losses as an uninterrupted one:
after a stop at a checkpoint or by SIGINT / SIGTERM, with any ``num_workers``. The RNG states cover what the
training process draws (dropout, sampling in the heads). Random augmentation is drawn by the dataset from
the seed of each sample's key (``rcnn.data.sample_keys``: the seed and the stream position), in whichever
process loads it, so it needs no state of its own; this holds for loaders whose sampler yields keys (the
detection training loader: ``TrainingSampler(..., keyed=True)``). Not covered: a resumed run with another
world size, batch size or dataset (the sampler warns that the order differs, or refuses).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from rcnn.engine.checkpoint import Checkpointer, default_checkpoint_name
from rcnn.engine.hooks import Hook
from rcnn.engine.logging import MetricsWriter, WindowedMeans, console_loggers, flatten_metrics
from rcnn.engine.losses import check_finite, iteration_position, reduce_losses, total_loss
from rcnn.engine.lr_scheduler import build_lr_scheduler, build_warmup_multistep_lr, current_lr
from rcnn.engine.optim import build_sgd
from rcnn.engine.signals import StopSignals, TrainingInterrupted
from rcnn.utils import comm as du
from rcnn.utils.comm import move_to_device, resolve_amp_dtype
from rcnn.utils.rng import capture_rng_state, restore_rng_state

logger = logging.getLogger(__name__)

Callback = Callable[["Trainer"], None]
CheckpointName = Callable[[int, str], "str | None"]


class Trainer:
    """Iteration-based training loop; see the module docstring. Arguments are plain values.

    ``optimizer`` defaults to :func:`build_sgd` with ``base_lr``, ``momentum``, ``weight_decay``;
    ``scheduler`` to a constant lr. ``sampler`` is the object whose position is checkpointed (a
    :class:`rcnn.data.samplers.GroupedBatchSampler`, or anything with ``state_dict`` /
    ``load_state_dict``). ``eval_fn(model) -> dict`` runs on every process with the unwrapped model every
    ``eval_period`` iterations (0: only at the end); its numbers are logged as ``eval/<key>``.
    ``extra_state`` maps names to objects with ``state_dict`` / ``load_state_dict`` saved along;
    ``hooks`` (:mod:`rcnn.engine.hooks`) run around the loop, then ``callbacks`` are called as
    ``callback(trainer)`` after every iteration.

    For epoch-based runs (classifiers): ``iters_per_epoch`` makes messages name the epoch;
    ``saved_model`` is the module stored as the checkpoint's ``model`` (default: the trained model; a
    loss adapter passes the network it wraps); ``checkpoint_fields(trainer)`` adds top-level entries to
    every checkpoint; ``checkpoint_name(iteration, kind)`` names the checkpoints
    (:func:`default_checkpoint_name`); ``write_metrics=False`` leaves ``metrics.jsonl`` to the hooks.
    """

    def __init__(
        self,
        model: nn.Module,
        data_loader: Iterable[tuple[Any, Any]],
        *,
        max_iter: int,
        output_dir: str | os.PathLike,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: Any | None = None,
        sampler: Any | None = None,
        base_lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        checkpoint_period: int = 1000,
        log_period: int = 20,
        clip_grad_norm: float = 0.0,
        amp: bool = False,
        amp_dtype: str | torch.dtype | None = None,
        device: str | torch.device = "auto",
        eval_fn: Callable[[nn.Module], dict[str, Any]] | None = None,
        eval_period: int = 0,
        find_unused_parameters: bool = False,
        extra_state: dict[str, Any] | None = None,
        callbacks: Sequence[Callback] = (),
        hooks: Sequence[Hook] = (),
        progress: bool = True,
        tensorboard: bool = True,
        handle_signals: bool = True,
        iters_per_epoch: int = 0,
        saved_model: nn.Module | None = None,
        checkpoint_fields: Callable[[Trainer], dict[str, Any]] | None = None,
        checkpoint_name: CheckpointName = default_checkpoint_name,
        write_metrics: bool = True,
    ) -> None:
        if max_iter <= 0:
            raise ValueError(f"max_iter must be positive, got {max_iter}")
        du.init_distributed(device)
        self.device = du.select_device(device)
        self.output_dir = os.fspath(output_dir)
        self.is_main = du.is_main_process()
        self.world_size = du.get_world_size()
        model.to(self.device)
        self.model = du.wrap_ddp(model, self.device, find_unused_parameters=find_unused_parameters)
        if optimizer is None:
            optimizer = build_sgd(model, base_lr, momentum, weight_decay)
        self.optimizer = optimizer
        self.scheduler = build_lr_scheduler(optimizer, "constant") if scheduler is None else scheduler
        self.data_loader = data_loader
        self.sampler = sampler
        self.max_iter = int(max_iter)
        self.checkpoint_period = int(checkpoint_period)
        self.log_period = int(log_period)
        self.clip_grad_norm = float(clip_grad_norm)
        self.amp_dtype = resolve_amp_dtype(amp, self.device, amp_dtype)
        use_scaler = self.amp_dtype == torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        self.eval_fn = eval_fn
        self.eval_period = int(eval_period)
        self.extra_state = dict(extra_state or {})
        self.callbacks = list(callbacks)
        self.hooks = list(hooks)
        self.iters_per_epoch = int(iters_per_epoch)
        self.saved_model = saved_model
        self.checkpoint_fields = checkpoint_fields
        self.checkpoint_name = checkpoint_name
        self.write_metrics = write_metrics
        self.progress, self.tensorboard, self.handle_signals = progress, tensorboard, handle_signals
        self.checkpointer = Checkpointer(self.output_dir, enabled=self.is_main)

        self.iter = 0  # completed iterations
        self.start_iter = 0
        self.last_losses: dict[str, float] = {}  # this process, last iteration
        self.last_reduced_losses: dict[str, float] = {}  # averaged over processes
        self.eval_results: dict[str, Any] = {}
        self.last_checkpoint: str | None = None
        self._pending_rng: dict[str, Any] | None = None
        self.lr = current_lr(optimizer)  # of the last iteration
        self.last_data_time = self.last_iter_time = 0.0  # seconds: waiting for its batch; all of it
        self.stop = StopSignals()
        self._stop_agreed = False
        self._saved_at = -1

    @classmethod
    def from_config(
        cls, solver: Any, model: nn.Module, data_loader: Iterable[tuple[Any, Any]], **kwargs: Any
    ) -> Trainer:
        """A trainer for a :class:`rcnn.config_schema.SolverConfig`: SGD (``base_lr``, ``momentum``,
        ``weight_decay``), warm-up + multi-step schedule, and the solver's periods, clipping, AMP and
        device. ``kwargs`` (``output_dir``, ``sampler``, ``eval_fn``, ...) go to the constructor."""
        device = du.select_device(solver.device)
        model.to(device)
        optimizer = build_sgd(model, solver.base_lr, solver.momentum, solver.weight_decay)
        scheduler = build_warmup_multistep_lr(
            optimizer, solver.steps, solver.gamma, solver.warmup_iters, solver.warmup_factor
        )
        options = dict(
            max_iter=solver.max_iter,
            checkpoint_period=solver.checkpoint_period,
            log_period=solver.log_period,
            clip_grad_norm=solver.clip_grad_norm,
            amp=solver.amp,
            device=device,
            eval_period=solver.eval_period,
        )
        options.update(kwargs)
        return cls(model, data_loader, optimizer=optimizer, scheduler=scheduler, **options)

    # ------------------------------------------------------------------------------------ checkpoints

    @property
    def unwrapped_model(self) -> nn.Module:
        return du.unwrap_model(self.model)

    def register_state(self, name: str, obj: Any) -> None:
        """Save ``obj.state_dict()`` in checkpoints under ``extra/<name>`` and restore it on resume."""
        self.extra_state[name] = obj

    def _data_state(self) -> Any:
        if self.sampler is None:
            return None
        if hasattr(self.sampler, "state_after"):
            return self.sampler.state_after(self.iter - self.start_iter)
        return self.sampler.state_dict()

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (collective under DDP: the RNG states of all ranks)."""
        fields = self.checkpoint_fields(self) if self.checkpoint_fields is not None else {}
        model = self.saved_model if self.saved_model is not None else self.unwrapped_model
        return {
            **fields,
            "model": model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "iteration": self.iter,
            "max_iter": self.max_iter,
            "data": self._data_state(),
            "rng": du.all_gather_object(capture_rng_state()),
            "extra": {name: obj.state_dict() for name, obj in self.extra_state.items()},
        }

    def save_checkpoint(self, name: str | None = None) -> str:
        """Save ``<name>.pth`` (default ``model_<iteration>``; written by rank 0) and update the pointer."""
        state = self.state_dict()
        path = self.checkpointer.save(name or f"model_{self.iter:07d}", **state)
        du.synchronize()
        self.last_checkpoint, self._saved_at = path, self.iter
        return path

    def resume(self, path_or_latest: str | os.PathLike = "latest") -> int:
        """Restore a checkpoint (``"latest"``: the one ``last_checkpoint`` names). Returns the iteration.

        Anything missing raises ``FileNotFoundError`` naming the path: never a silent fresh start.
        """
        path = self.checkpointer.resolve(path_or_latest)
        return self.load_state_dict(self.checkpointer.load(path), path)

    def load_state_dict(self, state: dict[str, Any], path: str = "checkpoint") -> int:
        """Restore what :meth:`state_dict` saved (``path`` names it in messages). Returns the iteration."""
        model = self.saved_model if self.saved_model is not None else self.unwrapped_model
        model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.sampler is not None and state.get("data") is not None:
            self.sampler.load_state_dict(state["data"])
        elif self.sampler is not None:
            logger.warning("%s has no data position: the data stream restarts from the beginning", path)
        for name, obj in self.extra_state.items():
            if name in state.get("extra", {}):
                obj.load_state_dict(state["extra"][name])
        rng = state.get("rng") or []
        rank = du.get_rank()
        if len(rng) != self.world_size:
            logger.warning("checkpoint has RNG states of %d processes, running %d", len(rng), self.world_size)
        self._pending_rng = rng[rank] if rank < len(rng) else (rng[0] if rng else None)
        self.iter = self.start_iter = int(state["iteration"])
        self.last_checkpoint, self._saved_at = path, self.iter
        logger.info("resumed from %s at iteration %d", path, self.iter)
        return self.iter

    def request_stop(self, signum: int = signal.SIGINT) -> None:
        """Finish the current iteration, save a checkpoint and raise :class:`TrainingInterrupted`."""
        self.stop.request(signum)

    # ------------------------------------------------------------------------------------ the loop

    def run_step(self, images: Any, targets: Any) -> tuple[dict[str, float], bool]:
        """One optimisation step; returns the process-averaged losses and whether to stop after it."""
        images = move_to_device(images, self.device)
        targets = move_to_device(targets, self.device)
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            loss_dict = self.model(images, targets)
        total = total_loss(loss_dict)
        self.last_losses, reduced, stop = reduce_losses(loss_dict, total, self.stop.requested)
        check_finite(reduced, self.last_losses, iteration_position(self.iter + 1, self.iters_per_epoch))
        self.last_reduced_losses = reduced

        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            self._grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.clip_grad_norm))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return reduced, stop

    def _evaluate(self, writer: MetricsWriter) -> dict[str, Any]:
        if self.eval_fn is None:
            return {}
        try:
            results = self.eval_fn(self.unwrapped_model) or {}
        finally:
            self.model.train()
        self.eval_results = results
        flat = flatten_metrics(results, prefix="eval")
        writer.write(flat, step=self.iter)
        logger.info("evaluation at iteration %d: %s", self.iter, flat)
        return results

    def _next_batch(self, data_iter: Iterator[Any]) -> tuple[Any, Iterator[Any]]:
        try:
            return next(data_iter), data_iter
        except StopIteration:  # a finite loader: start another pass
            data_iter = iter(self.data_loader)
            return next(data_iter), data_iter

    def train(self) -> dict[str, Any]:
        """Train up to ``max_iter``; returns the final evaluation's results ({} without ``eval_fn``).

        Raises :class:`TrainingInterrupted` after SIGINT/SIGTERM (checkpoint saved) and
        ``FloatingPointError`` on a non-finite loss (no checkpoint: the state is suspect).
        """
        if self.iter >= self.max_iter:
            logger.info("nothing to do: already at iteration %d of %d", self.iter, self.max_iter)
            return self.eval_results
        self.model.train()
        self.stop.clear()
        self._stop_agreed, self._grad_norm = False, None
        for hook in self.hooks:
            hook.before_train(self)
        data_iter = iter(self.data_loader)
        if self._pending_rng is not None:  # after iter(): creating the iterator draws from the RNG
            restore_rng_state(self._pending_rng)
            self._pending_rng = None
        writer = MetricsWriter(
            self.output_dir,
            purge_after=self.start_iter,
            tensorboard=self.tensorboard,
            enabled=self.is_main and self.write_metrics,
        )
        window = WindowedMeans()
        show = self.progress and self.is_main
        bar = tqdm(total=self.max_iter, initial=self.iter, desc="train", dynamic_ncols=True, disable=not show)
        logger.info("training from iteration %d to %d on %s", self.iter, self.max_iter, self.device)
        try:
            with (
                self.stop.handlers(self.handle_signals),
                logging_redirect_tqdm(loggers=console_loggers(bar)),
            ):
                while self.iter < self.max_iter:
                    start = time.perf_counter()
                    try:
                        (images, targets), data_iter = self._next_batch(data_iter)
                    except Exception:
                        if not self.stop.requested:
                            raise
                        break  # the data pipeline died with the signal: stop after the last full iteration
                    self.last_data_time = data_time = time.perf_counter() - start
                    self.lr = lr = current_lr(self.optimizer)
                    reduced, self._stop_agreed = self.run_step(images, targets)
                    self.iter += 1
                    self.last_iter_time = time.perf_counter() - start
                    window.add({**reduced, "time": self.last_iter_time, "data_time": data_time})
                    bar.update(1)
                    bar.set_postfix(loss=f"{reduced['total_loss']:.4f}", lr=f"{lr:.3g}", refresh=False)
                    for hook in self.hooks:
                        hook.after_step(self)
                    for callback in self.callbacks:
                        callback(self)
                    # Under DDP all processes stop together, at the iteration they agreed on in run_step.
                    stopping = self._stop_agreed or (self.world_size == 1 and self.stop.requested)
                    last = self.iter == self.max_iter
                    if (self.log_period > 0 and self.iter % self.log_period == 0) or last or stopping:
                        record = {"lr": lr, **window.pop_means()}
                        if self._grad_norm is not None:
                            record["grad_norm"] = self._grad_norm
                        if self.scaler.is_enabled():
                            record["loss_scale"] = float(self.scaler.get_scale())
                        writer.write(record, step=self.iter)
                    if last or stopping:
                        break
                    if self.checkpoint_period > 0 and self.iter % self.checkpoint_period == 0:
                        self._save("period")
                    if self.eval_period > 0 and self.iter % self.eval_period == 0:
                        self._evaluate(writer)
                if self.iter < self.max_iter:  # stopped by a signal
                    saved = self._saved_at == self.iter
                    path = self.last_checkpoint if saved else self._save("interrupted", required=True)
                    signum = self.stop.signum if self.stop.signum is not None else signal.SIGTERM
                    raise TrainingInterrupted(signum, self.iter, path)
                self._save("final")
                return self._evaluate(writer)
        finally:
            bar.close()
            writer.close()
            for hook in self.hooks:
                hook.after_train(self)

    def _save(self, kind: str, *, required: bool = False) -> str | None:
        name = self.checkpoint_name(self.iter, kind)
        if name is None and required:
            name = default_checkpoint_name(self.iter, kind)
        return None if name is None else self.save_checkpoint(name)
