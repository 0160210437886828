"""Classification task glue: ImageFolder datasets and loaders from a ``ClassificationConfig``, the epoch
data stream, and the loss adapter through which :class:`rcnn.engine.trainer.Trainer` trains a classifier
(the run built from a config is :mod:`rcnn.tasks.classifier_run`).

    train, val, val10 = build_classification_datasets(cfg)     # val10: 10-crop view of val (or None)
    loader = build_classification_loader(train, sampler, batch_size=64, num_workers=2, pin_memory=False)
    total, main, logits = classification_loss(model(images), targets, nn.CrossEntropyLoss(), 0.3)
    adapter = ClassifierLoss(model, nn.CrossEntropyLoss(), aux_weight=0.3)
    adapter(images, targets)                  # -> {"loss_cls", "loss_aux1", "loss_aux2"} (GoogLeNet)
    stream = EpochStream(loader, epoch_sampler, seed=0, rank=0)   # endless, epoch after epoch
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from rcnn.config_schema import ClassificationConfig
from rcnn.data.imagefolder import ImageFolderDataset, build_classification_transforms, ten_crop_transform
from rcnn.data.samplers import worker_init_fn


def classification_losses(
    outputs: Tensor | tuple[Tensor, ...],
    targets: Tensor,
    criterion: Callable[[Tensor, Tensor], Tensor],
    aux_weight: float,
) -> tuple[dict[str, Tensor], Tensor]:
    """``({"loss_cls": criterion(logits), "loss_aux<i>": aux_weight * criterion(aux_i), ...}, logits)``.

    ``outputs`` is ``logits (N, C)`` or a tuple ``(logits, aux_1, ..., aux_m)`` (GoogLeNet's auxiliary
    classifiers in training mode).
    """
    logits, *aux = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    losses = {"loss_cls": criterion(logits, targets)}
    for i, aux_logits in enumerate(aux, 1):
        losses[f"loss_aux{i}"] = aux_weight * criterion(aux_logits, targets)
    return losses, logits


def classification_loss(
    outputs: Tensor | tuple[Tensor, ...],
    targets: Tensor,
    criterion: Callable[[Tensor, Tensor], Tensor],
    aux_weight: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(total loss, main loss, main logits)``: ``total = criterion(logits) + aux_weight * sum_i
    criterion(aux_i)`` over :func:`classification_losses` (summed in order, as the trainer sums them)."""
    losses, logits = classification_losses(outputs, targets, criterion, aux_weight)
    main = losses["loss_cls"]
    total = main
    for name, value in losses.items():
        if name != "loss_cls":
            total = total + value
    return total, main, logits


class ClassifierLoss(nn.Module):
    """``model(images (N, 3, H, W), targets (N,)) -> {"loss_cls", "loss_aux<i>"...}``: a classifier as a
    model of :class:`rcnn.engine.trainer.Trainer` (the loss adapter, as ``FinetuneModel`` is for R-CNN).

    After each forward ``correct`` (a 0-dim tensor: top-1 hits of the main logits) and ``count`` (N) hold
    the batch's training accuracy, for the epoch statistics.
    """

    def __init__(
        self, classifier: nn.Module, criterion: Callable[[Tensor, Tensor], Tensor], aux_weight: float = 0.3
    ) -> None:
        super().__init__()
        self.classifier = classifier
        self.criterion = criterion
        self.aux_weight = float(aux_weight)
        self.correct: Tensor = torch.zeros(())
        self.count = 0

    def forward(self, images: Tensor, targets: Tensor) -> dict[str, Tensor]:
        losses, logits = classification_losses(
            self.classifier(images), targets, self.criterion, self.aux_weight
        )
        self.correct = (logits.detach().argmax(1) == targets).sum()
        self.count = int(targets.shape[0])
        return losses


def build_classification_datasets(cfg: ClassificationConfig) -> tuple[Dataset, Dataset, Dataset | None]:
    """``(train, val centre-crop, val 10-crop or None)`` ImageFolder datasets of ``cfg.data``.

    The 10-crop view exists when ``cfg.test.ten_crop``; the two splits must have the same class folders.
    """
    d = cfg.data
    common = {"resize": d.resize, "crop": d.crop, "mean": d.mean, "std": d.std}
    train_tf = build_classification_transforms(
        train=True, hflip=d.hflip, pca_lighting=d.pca_lighting, color_jitter=d.color_jitter, **common
    )
    val_tf = build_classification_transforms(
        train=False, hflip=False, pca_lighting=0.0, color_jitter=0.0, **common
    )
    train = ImageFolderDataset(os.path.join(d.root, d.train_split), train_tf)
    val_dir = os.path.join(d.root, d.val_split)
    val = ImageFolderDataset(val_dir, val_tf)
    if list(val.classes) != list(train.classes):
        raise ValueError(
            f"{val_dir}: class folders {list(val.classes)} differ from the training split's "
            f"{list(train.classes)}"
        )
    val10 = ImageFolderDataset(val_dir, ten_crop_transform(**common)) if cfg.test.ten_crop else None
    return train, val, val10


def build_classification_loader(
    dataset: Dataset,
    sampler: Sampler[int],
    batch_size: int,
    *,
    num_workers: int = 0,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """``(images (B, 3, h, w) or (B, 10, 3, h, w), targets (B,))`` batches of ``dataset`` in ``sampler``
    order; data workers ignore SIGINT/SIGTERM (the training process checkpoints and stops them)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        worker_init_fn=worker_init_fn(num_workers),
    )


class EpochSampler(Sampler[Any]):
    """An epoch-based sampler's items (indices, or the :class:`~rcnn.data.samplers.KeyedSampler` keys of
    a :class:`DistributedSampler`) of the current epoch, the first ``skip`` left out (to start an epoch in
    the middle on resume); ``set_epoch`` is passed on."""

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(len(self.sampler) - self.skip, 0)


class EpochStream:
    """The batches of ``loader`` (over ``sampler``) epoch after epoch, endlessly; the trainer stops it.

    Shuffling (``seed + epoch``) and the data-worker seeds depend on the seed, the rank and the epoch
    only. The position is checkpointed like a sampler's (``state_after(batches)`` / ``load_state_dict``):
    ``{"epoch": completed epochs, "batch": batches done in the next}``, so a resumed run continues at
    the batch an uninterrupted one would draw next.
    """

    def __init__(self, loader: Any, sampler: EpochSampler, *, seed: int, rank: int) -> None:
        self.loader = loader
        self.sampler = sampler
        self.seed = int(seed)
        self.rank = int(rank)
        self.batch_size = int(loader.batch_size)
        self.iters_per_epoch = len(loader)
        self.position = 0  # batches done before the next __iter__ starts

    def __iter__(self) -> Iterator[Any]:
        epoch, offset = divmod(self.position, self.iters_per_epoch)
        while True:
            self.sampler.set_epoch(epoch)
            self.sampler.skip = offset * self.batch_size
            # Data-worker seeds depend on (seed, rank, epoch) only: a resumed epoch draws the same ones.
            seed = (self.seed * 1009 + self.rank) * 100003 + epoch
            self.loader.generator = torch.Generator().manual_seed(seed)
            yield from self.loader
            epoch, offset = epoch + 1, 0

    def state_after(self, batches: int) -> dict[str, int]:
        epoch, batch = divmod(self.position + int(batches), self.iters_per_epoch)
        return {"epoch": epoch, "batch": batch}

    def state_dict(self) -> dict[str, int]:
        return self.state_after(0)

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = int(state["epoch"]) * self.iters_per_epoch + int(state["batch"])
