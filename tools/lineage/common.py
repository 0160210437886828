"""What the experiments share: the section they return, images held in memory as tensors, and a short
classifier training through the one :class:`rcnn.engine.trainer.Trainer` on such tensors.

    train = TensorSet(images_uint8 (N, C, H, W), labels (N,), classes)
    history = train_on_tensors(model, train, test, Schedule(iterations=2000, ...), work_dir=tmp)
    history[-1]  # {"iteration", "train_err", "test_err"}: the running training error of the last
                 # period (augmented batches, as the papers plot it) and the test error at its end
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rcnn.engine.hooks import Hook
from rcnn.engine.lr_scheduler import build_lr_scheduler
from rcnn.engine.optim import build_sgd
from rcnn.engine.trainer import Trainer
from rcnn.evaluation.classification import topk_errors
from rcnn.tasks.classification import ClassifierLoss


@dataclass
class Section:
    """One experiment's part of docs/experiments.md: markdown (pictures linked by file name) and the
    files it wrote into the output folder."""

    name: str
    title: str
    markdown: str
    files: list[str] = field(default_factory=list)


@dataclass
class TensorSet:
    """Images ``(N, C, H, W) uint8``, labels ``(N,) int64`` and the class names."""

    images: Tensor
    labels: Tensor
    classes: list[str]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_imagefolder(split_dir: str, grey: bool = False) -> TensorSet:
    """Every ``split_dir/<class>/*.png`` as one tensor (classes sorted by name give the label)."""
    classes = sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d)))
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted(glob.glob(os.path.join(split_dir, name, "*.png"))):
            image = cv2.imread(path, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
            if image is None:
                raise FileNotFoundError(f"{path}: not a readable image")
            images.append(image[None] if grey else cv2.cvtColor(image, cv2.COLOR_BGR2RGB).transpose(2, 0, 1))
            labels.append(label)
    return TensorSet(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64), classes)


@dataclass
class Schedule:
    """SGD with momentum and weight decay; the lr multiplied by ``gamma`` at the fractions ``drops`` of
    ``iterations`` (the ResNet paper's CIFAR recipe: 0.1, 0.9, 1e-4, drops at 50% and 75%). A linear
    warm-up over the first ``warmup_iterations`` rises from ``warmup_factor * base_lr`` (0: none)."""

    iterations: int
    batch_size: int = 128
    base_lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    drops: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    warmup_iterations: int = 0
    warmup_factor: float = 0.1
    eval_period: int = 100
    pad_crop: int = 4  # random crops of the images padded by this many zero pixels (0: none)
    hflip: bool = True
    seed: int = 0


def normalise(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 ``(N, C, H, W)`` -> float32, per-channel ``(x / 255 - mean) / std``."""
    return (images.float() / 255.0 - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def augmented_batches(data: TensorSet, schedule: Schedule, mean: Tensor, std: Tensor) -> Iterator[tuple]:
    """Endless ``(images (B, C, H, W) float, labels (B,))``: reshuffled every epoch, padded random crops
    and horizontal flips as ``schedule`` says; deterministic from ``schedule.seed``."""
    g = torch.Generator().manual_seed(schedule.seed)
    n, p = len(data), schedule.pad_crop
    h, w = data.images.shape[-2:]
    while True:
        order = torch.randperm(n, generator=g)
        for start in range(0, n - schedule.batch_size + 1, schedule.batch_size):
            idx = order[start : start + schedule.batch_size]
            x = normalise(data.images[idx], mean, std)
            if p:
                x = F.pad(x, (p, p, p, p))  # zeros of the normalised images (the mean colour)
                dy, dx = torch.randint(0, 2 * p + 1, (2, len(idx)), generator=g)
                x = torch.stack([x[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(len(idx))])
            if schedule.hflip:
                flip = torch.rand(len(idx), generator=g) < 0.5
                x[flip] = x[flip].flip(-1)
            yield x, data.labels[idx]


@torch.inference_mode()
def predict(model: nn.Module, data: TensorSet, mean: Tensor, std: Tensor, batch_size: int = 500) -> Tensor:
    """Logits ``(N, K)`` of the model in eval mode (its mode restored)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = [
            model(normalise(data.images[i : i + batch_size], mean, std).to(device)).float().cpu()
            for i in range(0, len(data), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out)


class ErrorCurve(Hook):
    """Every ``period`` iterations: the running training error of the period and the test error."""

    def __init__(self, adapter: ClassifierLoss, test: TensorSet, mean: Tensor, std: Tensor, period: int):
        self.adapter, self.test, self.mean, self.std, self.period = adapter, test, mean, std, period
        self.correct = self.count = 0
        self.history: list[dict[str, float]] = []

    def after_step(self, trainer: Trainer) -> None:
        self.correct += int(self.adapter.correct)
        self.count += self.adapter.count
        if trainer.iter % self.period and trainer.iter != trainer.max_iter:
            return
        logits = predict(self.adapter.classifier, self.test, self.mean, self.std)
        test_err = topk_errors(logits, self.test.labels, ks=(1,))["top1_err"]
        self.history.append(
            {"iteration": trainer.iter, "train_err": 1 - self.correct / self.count, "test_err": test_err}
        )
        self.correct = self.count = 0


def channel_stats(data: TensorSet) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std of the images (0..1 scale)."""
    x = data.images.float() / 255.0
    return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-3)


def train_on_tensors(
    model: nn.Module, train: TensorSet, test: TensorSet, schedule: Schedule, *, work_dir: str | None = None
) -> list[dict[str, float]]:
    """Train ``model`` (on the CPU) following ``schedule``; returns the :class:`ErrorCurve` history."""
    torch.manual_seed(schedule.seed)
    mean, std = channel_stats(train)
    adapter = ClassifierLoss(model, nn.CrossEntropyLoss())
    optimizer = build_sgd(model, schedule.base_lr, schedule.momentum, schedule.weight_decay)
    steps = [max(1, int(f * schedule.iterations)) for f in schedule.drops]
    scheduler = build_lr_scheduler(
        optimizer,
        "step",
        steps=steps,
        gamma=schedule.gamma,
        warmup_steps=schedule.warmup_iterations,
        warmup_factor=schedule.warmup_factor,
    )
    curve = ErrorCurve(adapter, test, mean, std, schedule.eval_period)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        trainer = Trainer(
            adapter,
            augmented_batches(train, schedule, mean, std),
            optimizer=optimizer,
            scheduler=scheduler,
            max_iter=schedule.iterations,
            output_dir=tmp,
            checkpoint_period=0,
            log_period=max(schedule.eval_period, 1),
            device="cpu",
            hooks=[curve],
            progress=False,
            tensorboard=False,
            handle_signals=False,
            write_metrics=False,
        )
        trainer.train()
    return curve.history


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
