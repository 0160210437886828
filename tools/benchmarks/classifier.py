"""Classifier training benchmark: our training step against a plain loop on torchvision's model.

:func:`run_section` returns a markdown section for ``docs/benchmarks.md`` with two tables.

**Training throughput** (images/s) of ResNet-18, ResNet-50 and VGG-16 at 224x224, batch 8, 1000 classes:

* "ours": :func:`backbones.build_classifier` and one iteration exactly as
  :class:`rcnn.tasks.classifier_run.ClassifierRun` trains it (:func:`make_our_step`): the classifier in its
  loss adapter :class:`~rcnn.tasks.classification.ClassifierLoss`, one
  :meth:`rcnn.engine.trainer.Trainer.run_step` (the batch moved to the device, autocast off:
  ``solver.amp`` defaults to false; the losses read back, averaged and checked to be finite,
  ``zero_grad(set_to_none=True)``, backward and step through the trainer's ``GradScaler``, disabled
  without fp16; the optimizer of :func:`rcnn.engine.optim.build_sgd`; the per-iteration lr-scheduler
  step), then the run's epoch-statistics hook (running loss / top-1 sums). The trainer keeps the default
  (contiguous, NCHW) memory format and fp32.
* "plain": ``torchvision.models.<name>(num_classes=1000)``, ``nn.CrossEntropyLoss``,
  ``torch.optim.SGD(lr=0.01, momentum=0.9, weight_decay=1e-4)``; forward, loss, ``zero_grad``, backward,
  step.

Both start from the same weights (ours loads the torchvision model's state_dict: the layouts match) and
train on the same random batch (normalised-like ``randn`` images, random labels), with the same lr, momentum
and weight decay. Timings alternate the two repetition by repetition (the order flips every repetition)
after warm-up (:func:`tools.benchmarks.timing.time_interleaved`) and report medians.

**Waiting for data**: the real :class:`~rcnn.tasks.classifier_run.ClassifierRun` trains one epoch
(``solver.epochs=1``) of a few iterations on a small synthetic ImageFolder set
(:func:`rcnn.data.synthetic.make_classification_dataset`, PNG files written to a temporary folder) with its
own data loader, transforms and worker processes, and the table reports the ``data_time_share`` it computes
(time waiting for the next batch / epoch wall time) and its images/s. A thin wrapper around the trainer's
loader also times each wait, so the share is given again without the first batch, whose wait includes starting
the worker processes (paid once per epoch; negligible over an ImageNet epoch of thousands of iterations, but
not over a few).

    python tools/benchmark.py --sections classifier [--quick] [--device cuda] [--threads 1] [--reps N]

writes it into ``docs/benchmarks.md`` (``--output FILE`` elsewhere); from the repository root,
``python -m tools.benchmarks.classifier`` takes the same options and prints the markdown.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torchvision
from torch import Tensor, nn

import backbones
from rcnn.config_schema import ClassificationConfig, ClsSolverConfig
from rcnn.data.synthetic import CATEGORY_NAMES, make_classification_dataset
from rcnn.engine.lr_scheduler import build_lr_scheduler
from rcnn.engine.optim import build_sgd
from rcnn.engine.trainer import Trainer
from rcnn.tasks.classification import ClassifierLoss
from rcnn.tasks.classifier_run import ClassifierRun, EpochStats
from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring, section_main
from tools.benchmarks.timing import time_interleaved

PLAIN_LR, PLAIN_MOMENTUM, PLAIN_WEIGHT_DECAY = 0.01, 0.9, 1e-4
NUM_CLASSES = 1000
NOMINAL_ITERS_PER_EPOCH = 5000  # ImageNet at batch 256


@dataclass(frozen=True)
class Case:
    """One row of the throughput table: a network, a square input size and a batch size."""

    name: str  # backbones / torchvision name
    size: int
    batch: int


@dataclass(frozen=True)
class DataCase:
    """One row of the data-wait table: the trainer on a synthetic set for one epoch of at least
    ``iterations`` iterations (the set has whole classes of images, so the epoch may have a few more)."""

    name: str
    resize: int  # shorter side before the random crop
    crop: int
    batch: int
    workers: int  # data loader worker processes (``data.num_workers``; the config default is 2)
    iterations: int
    image_size: int  # side of the generated (square) PNG images


FULL_CASES = (Case("resnet18", 224, 8), Case("resnet50", 224, 8), Case("vgg16", 224, 8))
QUICK_CASES = (Case("resnet18", 64, 4),)
# VGG-16 is left out of the data-wait runs: its step is the slowest, so its share is the smallest.
FULL_DATA_CASES = (
    DataCase("resnet18", 256, 224, 8, 2, 6, 320),
    DataCase("resnet50", 256, 224, 8, 2, 6, 320),
)
QUICK_DATA_CASES = (DataCase("resnet18", 72, 64, 4, 2, 4, 90),)


# ----------------------------------------------------------------------------------------------- the steps


def our_solver(lr: float = PLAIN_LR):
    """The trainer's solver config with the plain loop's lr, momentum and weight decay, a constant lr (no
    warm-up, no decay steps within the benchmark) and its other defaults (fp32, no clipping)."""

    return ClsSolverConfig(
        base_lr=lr,
        momentum=PLAIN_MOMENTUM,
        weight_decay=PLAIN_WEIGHT_DECAY,
        lr_schedule="step",
        steps=[],
        warmup_epochs=0,
    )


def make_our_step(model: nn.Module, images: Tensor, targets: Tensor, solver=None) -> Callable[[], None]:
    """One training iteration of ``model`` as :class:`rcnn.tasks.classifier_run.ClassifierRun` does it: the
    :class:`~rcnn.tasks.classification.ClassifierLoss` adapter through :meth:`Trainer.run_step`, then the
    epoch-statistics hook, with the optimizer, scheduler and loss the run builds from ``solver`` (default
    :func:`our_solver`)."""

    s = solver or our_solver()
    device = images.device
    optimizer = build_sgd(model, s.base_lr, s.momentum, s.weight_decay, nesterov=s.nesterov)
    n = NOMINAL_ITERS_PER_EPOCH  # the run converts epochs to iterations with its loader's length
    scheduler = build_lr_scheduler(
        optimizer,
        s.lr_schedule,
        total_steps=s.epochs * n,
        steps=[e * n for e in s.steps],
        gamma=s.gamma,
        warmup_steps=s.warmup_epochs * n,
        patience=s.plateau_patience,
    )
    adapter = ClassifierLoss(model, nn.CrossEntropyLoss(label_smoothing=s.label_smoothing), s.aux_loss_weight)
    trainer = Trainer(
        adapter, [], max_iter=1, output_dir=tempfile.gettempdir(),  # run_step only: nothing is written
        optimizer=optimizer, scheduler=scheduler, clip_grad_norm=s.clip_grad_norm, amp=s.amp,
        device=device, progress=False, tensorboard=False, handle_signals=False,
    )  # fmt: skip
    stats = EpochStats(adapter)
    model.train()

    def step() -> None:
        trainer.run_step(images, targets)
        stats.after_step(trainer)

    return step


def make_plain_step(model: nn.Module, images: Tensor, targets: Tensor) -> Callable[[], None]:
    """The textbook loop: cross-entropy, SGD (lr 0.01, momentum 0.9, weight decay 1e-4)."""
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=PLAIN_LR, momentum=PLAIN_MOMENTUM, weight_decay=PLAIN_WEIGHT_DECAY
    )
    model.train()

    def step() -> None:
        loss = criterion(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return step


def build_models(name: str, device: str, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """``(ours, plain)`` for ``name`` with 1000 classes, ours starting from the plain model's weights."""

    torch.manual_seed(seed)
    plain = getattr(torchvision.models, name)(num_classes=NUM_CLASSES)
    ours = backbones.build_classifier(name, num_classes=NUM_CLASSES)
    ours.load_state_dict(plain.state_dict())
    return ours.to(device), plain.to(device)


def make_batch(case: Case, device: str, seed: int = 0) -> tuple[Tensor, Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(case.batch, 3, case.size, case.size, generator=gen)
    targets = torch.randint(0, NUM_CLASSES, (case.batch,), generator=gen)
    return images.to(device), targets.to(device)


# ------------------------------------------------------------------------------------------ waiting for data


class _TimedLoader:
    """Iterates a DataLoader like the loader itself, recording how long each ``next`` waited."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self.waits: list[float] = []

    @property
    def generator(self):
        return self.loader.generator

    @generator.setter
    def generator(self, value) -> None:
        self.loader.generator = value

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        self.waits = []
        start = time.perf_counter()
        iterator = iter(self.loader)
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            self.waits.append(time.perf_counter() - start)
            yield batch
            start = time.perf_counter()


def measure_data_wait(case: DataCase, device: str, workdir: str) -> dict[str, float]:
    """Train ``case.name`` with :class:`ClassifierRun` for one epoch of ``case.iterations`` iterations
    on a synthetic set written under ``workdir``; returns the trainer's ``images_per_s`` and
    ``data_time_share``, and ``share_after_first`` (the same without the first batch's wait)."""

    per_class = math.ceil(case.iterations * case.batch / len(CATEGORY_NAMES))
    root = os.path.join(workdir, "data")
    make_classification_dataset(root, per_class, 1, image_size=case.image_size, workers=1)
    cfg = ClassificationConfig()
    cfg.model.name = case.name
    cfg.data.root = root
    cfg.data.resize, cfg.data.crop, cfg.data.num_workers = case.resize, case.crop, case.workers
    cfg.solver = our_solver()
    cfg.solver.batch_size, cfg.solver.epochs = case.batch, 1
    cfg.test.ten_crop = False
    cfg.output.dir = os.path.join(workdir, "output")
    run = ClassifierRun(cfg, torch.device(device), progress=False)
    run.stream.loader = loader = _TimedLoader(run.stream.loader)
    metrics = run.train().history[0]
    epoch_time, waits = metrics["epoch_time_s"], loader.waits
    rest = epoch_time - waits[0]
    return {
        "iterations": float(len(waits)),
        "images_per_s": metrics["images_per_s"],
        "data_time_share": metrics["data_time_share"],
        "share_after_first": sum(waits[1:]) / rest if rest > 0 else 0.0,
    }


# ------------------------------------------------------------------------------------------------- the table


def run_section(
    *, device: str = "cpu", quick: bool = False, threads: int = 1, reps: int | None = None
) -> str:
    """The markdown section ``## Classifier training: ours vs a plain torchvision loop`` (see the module
    docstring).

    device: "cpu" or "cuda[:i]"; quick: ResNet-18 at 64x64, batch 4, and a short data-wait run (a few
    seconds); threads: intra-op CPU threads (1 by default, steadier on a shared machine; data workers use
    one each); reps: timed repetitions (default 3, quick 3).
    """
    cases = QUICK_CASES if quick else FULL_CASES
    data_cases = QUICK_DATA_CASES if quick else FULL_DATA_CASES
    asked_reps, reps = reps, reps or 3
    warmup = 1
    rows, data_rows = [], []
    with measuring(device, threads):
        for case in cases:
            ours, plain = build_models(case.name, device)
            images, targets = make_batch(case, device)
            runs = {
                "plain": make_plain_step(plain, images, targets),
                "ours": make_our_step(ours, images, targets),
            }
            times = time_interleaved(runs, warmup=warmup, reps=reps, device=device)
            rows.append(_row(case, times))
            del ours, plain, runs
        for data_case in data_cases:
            with tempfile.TemporaryDirectory(prefix="rcnn_cls_bench_") as workdir:
                data_rows.append(_data_row(data_case, measure_data_wait(data_case, device, workdir)))
    return _markdown(
        rows,
        data_rows,
        data_cases,
        device=device,
        threads=threads,
        reps=reps,
        warmup=warmup,
        quick=quick,
        asked_reps=asked_reps,
    )


def _row(case: Case, times: dict) -> list[str]:
    plain_wall, plain_cpu = times["plain"]
    ours_wall, ours_cpu = times["ours"]
    return [
        case.name,
        f"{case.size}x{case.size}",
        str(case.batch),
        f"{case.batch / plain_wall:.2f}",
        f"{case.batch / ours_wall:.2f}",
        f"**{plain_wall / ours_wall:.2f}**",
        f"{plain_cpu / ours_cpu:.2f}",
    ]


def _data_row(case: DataCase, m: dict[str, float]) -> list[str]:
    return [
        case.name,
        f"{case.crop}x{case.crop} (resize {case.resize})",
        str(case.batch),
        str(case.workers),
        str(int(m["iterations"])),
        f"{m['images_per_s']:.2f}",
        f"**{100 * m['data_time_share']:.1f}%**",
        f"{100 * m['share_after_first']:.1f}%",
    ]


def _markdown(rows, data_rows, data_cases, *, device, threads, reps, warmup, quick, asked_reps) -> str:
    header = [
        "network", "input", "batch", "plain images/s", "ours images/s", "ratio ours / plain",
        "ratio (CPU time)",
    ]  # fmt: skip
    data_header = [
        "network", "crop", "batch", "data workers", "iterations", "images/s (trainer)",
        "data wait share (trainer)", "data wait share after the first batch",
    ]  # fmt: skip
    lines = ["## Classifier training: ours vs a plain torchvision loop", ""]
    lines += markdown_table(header, rows)
    lines += [
        "",
        "Waiting for data: our `ClassifierRun`, one epoch on a synthetic ImageFolder set (PNG):",
        "",
    ]
    lines += markdown_table(data_header, data_rows)
    command = command_line("classifier", device=device, quick=quick, threads=threads, reps=asked_reps)
    lines += measured_on(device, threads, command)
    lines += [
        f"- Throughputs are medians of {reps} repetitions per loop after {warmup} warm-up, the two loops "
        "alternating repetition by repetition (order flipped each time) in one process; the ratio is of "
        "those medians (target: >= 1.0, ours at least as fast), and next to it the same ratio of process "
        "CPU time, which other processes' load disturbs less.",
        "- ours: `backbones.build_classifier(name, num_classes=1000)` in its `ClassifierLoss` adapter, "
        "trained by `Trainer.run_step` (`make_our_step`: `build_sgd`, the lr scheduler, the losses read "
        "back, averaged and checked, `GradScaler`) and the epoch-statistics hook (running loss / top-1), "
        "fp32 and NCHW as the trainer runs by default. plain: `torchvision.models.<name>(num_classes=1000)`"
        ", `nn.CrossEntropyLoss`, `torch.optim.SGD(lr=0.01, momentum=0.9, weight_decay=1e-4)`. Same "
        "initial weights, same random batch, same hyper-parameters.",
        "- Data wait share: the trainer's `data_time_share` (time spent waiting for the next batch over the "
        "epoch's wall time), which includes starting the data workers (the first batch); the last column "
        "leaves the first batch out (its wait, and its share of the wall time). Models with the synthetic "
        "set's 9 classes; images written at "
        + ", ".join(sorted({f"{c.image_size}x{c.image_size}" for c in data_cases}))
        + " and decoded, resized, randomly cropped, flipped and normalised by the trainer's transforms.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    section_main(__doc__, run_section, argv, quick_help="ResNet-18 at 64x64 only, a short data run")


if __name__ == "__main__":
    main()
