"""Classification task glue used by :mod:`rcnn.engine.classifier_trainer`: the loss with auxiliary
classifiers, ImageFolder datasets and data loaders from a ``ClassificationConfig``.

    train, val, val10 = build_classification_datasets(cfg)     # val10: 10-crop view of val (or None)
    loader = build_classification_loader(train, sampler, batch_size=64, num_workers=2, pin_memory=False)
    total, main, logits = classification_loss(model(images), targets, nn.CrossEntropyLoss(), 0.3)
    main, logits = classifier_step(model, images, targets, criterion=..., optimizer=..., scaler=...)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from rcnn.config_schema import ClassificationConfig


def classification_loss(
    outputs: Tensor | tuple[Tensor, ...],
    targets: Tensor,
    criterion: Callable[[Tensor, Tensor], Tensor],
    aux_weight: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(total loss, main loss, main logits)`` for a model's training output.

    ``outputs`` is ``logits (N, C)`` or a tuple ``(logits, aux_1, ..., aux_m)`` (GoogLeNet's auxiliary
    classifiers): ``total = criterion(logits) + aux_weight * sum_i criterion(aux_i)``.
    """
    if isinstance(outputs, (tuple, list)):
        logits, *aux = outputs
        main = criterion(logits, targets)
        total = main
        for aux_logits in aux:
            total = total + aux_weight * criterion(aux_logits, targets)
        return total, main, logits
    main = criterion(outputs, targets)
    return main, main, outputs


def classifier_step(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    *,
    criterion: Callable[[Tensor, Tensor], Tensor],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    amp_dtype: torch.dtype | None = None,
    aux_weight: float = 0.0,
    clip_grad_norm: float = 0.0,
    where: str = "",
) -> tuple[Tensor, Tensor]:
    """One training iteration: forward (autocast to ``amp_dtype`` when given), :func:`classification_loss`,
    backward through ``scaler``, optional gradient-norm clipping, optimizer step.

    images: (N, 3, H, W) and targets: (N,) int64, on the model's device. Returns the detached ``(main
    loss, main logits (N, C))``. A non-finite loss raises ``FloatingPointError`` (its message ends with
    ``where``) before any weight changes.
    """
    with torch.autocast(images.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        outputs = model(images)
        loss, main_loss, logits = classification_loss(outputs, targets, criterion, aux_weight)
    loss_value = float(loss.detach())
    if not math.isfinite(loss_value):
        raise FloatingPointError(f"non-finite loss {loss_value}{where}")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if clip_grad_norm > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return main_loss.detach(), logits.detach()


def build_classification_datasets(cfg: ClassificationConfig) -> tuple[Dataset, Dataset, Dataset | None]:
    """``(train, val centre-crop, val 10-crop or None)`` ImageFolder datasets of ``cfg.data``.

    The 10-crop view exists when ``cfg.test.ten_crop``; the two splits must have the same class folders.
    """
    from rcnn.data.imagefolder import ImageFolderDataset, build_classification_transforms, ten_crop_transform

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
    from rcnn.data.samplers import worker_init_fn

    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=drop_last,
        pin_memory=pin_memory,
        worker_init_fn=worker_init_fn(num_workers),
    )
