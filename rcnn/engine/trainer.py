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
optimizer and scheduler step. Every ``log_period`` iterations the window averages go to
``metrics.jsonl`` / TensorBoard (rank 0); every ``checkpoint_period`` iterations and at the end a
checkpoint is written atomically and ``last_checkpoint`` updated.

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
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from rcnn.utils import comm as du
from rcnn.engine.checkpoint import Checkpointer
from rcnn.utils.rng import capture_rng_state, restore_rng_state
from rcnn.utils.comm import move_to_device, resolve_amp_dtype
from rcnn.engine.logging import DEFAULT_LOGGERS, MetricsWriter, WindowedMeans, flatten_metrics
from rcnn.engine.lr_scheduler import build_lr_scheduler, build_warmup_multistep_lr, current_lr
from rcnn.engine.optim import build_sgd

logger = logging.getLogger(__name__)

Callback = Callable[["Trainer"], None]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT / SIGTERM after saving ``checkpoint`` at ``iteration``.

    ``exit_code`` is ``128 + signal number`` (130 for SIGINT, 143 for SIGTERM), as a shell reports it.
    """

    def __init__(self, signum: int, iteration: int, checkpoint: str | None) -> None:
        self.signum = signum
        self.iteration = iteration
        self.checkpoint = checkpoint
        self.exit_code = 128 + signum
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        where = f"checkpoint saved to {checkpoint}" if checkpoint else "no checkpoint written"
        super().__init__(f"training stopped by {name} after iteration {iteration}; {where} (resume with it)")

    def __str__(self) -> str:
        return str(self.args[0])


class Trainer:
    """Iteration-based training loop; see the module docstring. Arguments are plain values.

    ``optimizer`` defaults to :func:`build_sgd` with ``base_lr``, ``momentum``, ``weight_decay``;
    ``scheduler`` to a constant lr. ``sampler`` is the object whose position is checkpointed (a
    :class:`rcnn.data.samplers.GroupedBatchSampler`, or anything with ``state_dict`` /
    ``load_state_dict``). ``eval_fn(model) -> dict`` runs on every process with the unwrapped model every
    ``eval_period`` iterations (0: only at the end); its numbers are logged as ``eval/<key>``.
    ``extra_state`` maps names to objects with ``state_dict`` / ``load_state_dict`` saved along;
    ``callbacks`` are called as ``callback(trainer)`` after every iteration.
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
        progress: bool = True,
        tensorboard: bool = True,
        handle_signals: bool = True,
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
        self.progress = progress
        self.tensorboard = tensorboard
        self.handle_signals = handle_signals
        self.checkpointer = Checkpointer(self.output_dir, enabled=self.is_main)

        self.iter = 0  # completed iterations
        self.start_iter = 0
        self.last_losses: dict[str, float] = {}  # this process, last iteration
        self.last_reduced_losses: dict[str, float] = {}  # averaged over processes
        self.eval_results: dict[str, Any] = {}
        self.last_checkpoint: str | None = None
        self._pending_rng: dict[str, Any] | None = None
        self._stop_signal: int | None = None
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
        return {
            "model": self.unwrapped_model.state_dict(),
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
        state = self.checkpointer.load(path)
        self.unwrapped_model.load_state_dict(state["model"])
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

    # ------------------------------------------------------------------------------------ signals

    def request_stop(self, signum: int = signal.SIGINT) -> None:
        """Finish the current iteration, save a checkpoint and raise :class:`TrainingInterrupted`."""
        self._stop_signal = signum

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal is not None:  # second signal: stop now, without a checkpoint
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} received twice: aborting")
        logger.warning(
            "%s received: stopping after the current iteration with a checkpoint (send again to abort)",
            signal.Signals(signum).name,
        )
        self.request_stop(signum)

    @contextlib.contextmanager
    def _signal_handlers(self):
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    # ------------------------------------------------------------------------------------ the loop

    def _reduce(self, loss_dict: dict[str, Tensor], total: Tensor) -> tuple[dict[str, float], bool]:
        """This process's losses (``last_losses``) and their average over processes; under DDP the
        processes also agree on stopping in the same collective."""
        values = {k: v.detach().float().reshape(()) for k, v in loss_dict.items()}
        values["total_loss"] = total.detach().float()
        keys = sorted(values)
        self.last_losses = dict(zip(keys, torch.stack([values[k] for k in keys]).tolist()))
        if self.world_size == 1:
            return dict(self.last_losses), self._stop_signal is not None
        flag = torch.tensor(float(self._stop_signal is not None) * self.world_size, device=total.device)
        reduced = du.all_reduce_dict({**values, "~stop": flag}, average=True)  # "~stop": number of ranks
        stop = reduced.pop("~stop")
        numbers = torch.stack([reduced[k] for k in keys] + [stop]).tolist()
        return dict(zip(keys, numbers[:-1])), numbers[-1] > 0

    def _check_finite(self, reduced: dict[str, float], local: dict[str, float]) -> None:
        if all(math.isfinite(v) for v in reduced.values()):
            return
        terms = ", ".join(f"{k}={v}" for k, v in sorted(reduced.items()))
        message = f"non-finite loss at iteration {self.iter + 1}: {terms}"
        if self.world_size > 1:
            message += f" (averaged over {self.world_size} processes; rank {du.get_rank()}: " + ", ".join(
                f"{k}={v}" for k, v in sorted(local.items())
            )
            message += ")"
        raise FloatingPointError(message)

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
        if not isinstance(loss_dict, dict) or not loss_dict:
            raise TypeError(
                f"model(images, targets) must return a non-empty dict of losses, got {loss_dict!r}"
            )
        for name, value in loss_dict.items():
            if not isinstance(value, Tensor) or value.numel() != 1:
                raise TypeError(f"loss {name!r} must be a scalar tensor, got {value!r}")
        total = sum(v.float().reshape(()) for v in loss_dict.values())
        reduced, stop = self._reduce(loss_dict, total)
        self._check_finite(reduced, self.last_losses)
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

    def _console_loggers(self, bar: tqdm) -> list[logging.Logger]:
        """The package loggers printing to the console, to route through ``tqdm.write`` under the bar."""
        if bar.disable:
            return []
        loggers = [logging.getLogger(n) for n in DEFAULT_LOGGERS]
        return [lg for lg in loggers if any(type(h) is logging.StreamHandler for h in lg.handlers)]

    def train(self) -> dict[str, Any]:
        """Train up to ``max_iter``; returns the final evaluation's results ({} without ``eval_fn``).

        Raises :class:`TrainingInterrupted` after SIGINT/SIGTERM (checkpoint saved) and
        ``FloatingPointError`` on a non-finite loss (no checkpoint: the state is suspect).
        """
        if self.iter >= self.max_iter:
            logger.info("nothing to do: already at iteration %d of %d", self.iter, self.max_iter)
            return self.eval_results
        data_iter = iter(self.data_loader)
        if self._pending_rng is not None:  # after iter(): creating the iterator draws from the RNG
            restore_rng_state(self._pending_rng)
            self._pending_rng = None
        self.model.train()
        self._stop_signal, self._stop_agreed, self._grad_norm = None, False, None
        writer = MetricsWriter(
            self.output_dir, purge_after=self.start_iter, tensorboard=self.tensorboard, enabled=self.is_main
        )
        window = WindowedMeans()
        show = self.progress and self.is_main
        bar = tqdm(total=self.max_iter, initial=self.iter, desc="train", dynamic_ncols=True, disable=not show)
        logger.info("training from iteration %d to %d on %s", self.iter, self.max_iter, self.device)
        try:
            with self._signal_handlers(), logging_redirect_tqdm(loggers=self._console_loggers(bar)):
                while self.iter < self.max_iter:
                    start = time.perf_counter()
                    try:
                        (images, targets), data_iter = self._next_batch(data_iter)
                    except Exception:
                        if self._stop_signal is None:
                            raise
                        break  # the data pipeline died with the signal: stop after the last full iteration
                    data_time = time.perf_counter() - start
                    lr = current_lr(self.optimizer)
                    reduced, self._stop_agreed = self.run_step(images, targets)
                    self.iter += 1
                    window.add({**reduced, "time": time.perf_counter() - start, "data_time": data_time})
                    bar.update(1)
                    bar.set_postfix(loss=f"{reduced['total_loss']:.4f}", lr=f"{lr:.3g}", refresh=False)
                    for callback in self.callbacks:
                        callback(self)
                    # Under DDP all processes stop together, at the iteration they agreed on in _reduce.
                    stopping = self._stop_agreed or (self.world_size == 1 and self._stop_signal is not None)
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
                        self.save_checkpoint()
                    if self.eval_period > 0 and self.iter % self.eval_period == 0:
                        self._evaluate(writer)
                if self.iter < self.max_iter:  # stopped by a signal
                    path = self.last_checkpoint if self._saved_at == self.iter else self.save_checkpoint()
                    signum = self._stop_signal if self._stop_signal is not None else signal.SIGTERM
                    raise TrainingInterrupted(signum, self.iter, path)
                self.save_checkpoint("model_final")
                return self._evaluate(writer)
        finally:
            bar.close()
            writer.close()
