"""A plain training loop and the COCO evaluation for a torchvision detector, on what rcnn's detector run of
the same config uses: its data loader, optimizer settings, schedule, precision and evaluator.

:func:`train_torchvision` trains ``model`` (``model(images, targets) -> {name: loss}``, as torchvision's
``FasterRCNN``) for ``cfg.solver.max_iter`` iterations on
:func:`rcnn.tasks.detection.build_detection_train_loader` of the training set (the same seeded, keyed
sampler and transforms, ``solver.ims_per_batch`` images a batch, ``data.num_workers`` workers): each
iteration moves the batch to the device, sums the losses (in float32) of the forward under autocast (when
``solver.amp``: :func:`rcnn.utils.comm.resolve_amp_dtype`, the dtype rcnn's trainer picks), then
``zero_grad``, backward, SGD step and schedule step, in the order of :class:`rcnn.engine.trainer.Trainer`.
SGD over the parameters that require gradients, with ``solver.base_lr``, ``momentum`` and
``weight_decay`` (one decay for all, as :func:`rcnn.engine.optim.build_sgd`), and
:func:`rcnn.engine.lr_scheduler.build_warmup_multistep_lr` of ``solver.warmup_iters``, ``warmup_factor``,
``steps`` and ``gamma``. Global RNGs are seeded with ``solver.seed`` first, as the tools' prologue does.

:func:`evaluate_torchvision` predicts the val split in eval mode (float32, batches of
``test.ims_per_batch``) and evaluates with :func:`rcnn.tasks.detection.evaluate_detector`, the function
rcnn's training run ends with (pycocotools' COCOeval, labels mapped back to the file's category ids).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from typing import Any

import torch
from torch import Tensor, nn

from rcnn.config_schema import DetectionConfig
from rcnn.engine.lr_scheduler import build_warmup_multistep_lr
from rcnn.tasks.detection import build_detection_train_loader, evaluate_detector
from rcnn.utils.comm import resolve_amp_dtype
from rcnn.utils.rng import seed_all


class EvaluatedDetector(nn.Module):
    """A torchvision detector in the interface :func:`rcnn.tasks.detection.run_inference` calls:
    ``forward(images N x (3, H_i, W_i)) -> N {"boxes" (D, 4), "labels" (D,), "scores" (D,)}`` and
    ``needs_proposals = False``."""

    needs_proposals = False

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        return self.model(images)


def train_torchvision(
    model: nn.Module, cfg: DetectionConfig, train_set, device: torch.device, *, log_every: int = 200
) -> tuple[float, torch.dtype | None]:
    """Train ``model`` in place (see the module docstring); prints the losses every ``log_every``
    iterations to stderr. Returns (seconds of the loop: data and steps, the autocast dtype or None).
    Raises FloatingPointError on a non-finite loss."""
    solver = cfg.solver
    seed_all(solver.seed)
    amp_dtype = resolve_amp_dtype(solver.amp, device, None)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16 and device.type == "cuda")
    model.to(device).train()
    if solver.channels_last:
        model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        params, lr=solver.base_lr, momentum=solver.momentum, weight_decay=solver.weight_decay
    )
    scheduler = build_warmup_multistep_lr(
        optimizer, solver.steps, solver.gamma, solver.warmup_iters, solver.warmup_factor
    )
    loader = build_detection_train_loader(cfg, train_set)
    data = iter(loader)
    seconds = 0.0
    for iteration in range(1, solver.max_iter + 1):
        start = time.perf_counter()
        images, targets = next(data)
        images = [image.to(device) for image in images]
        targets = [{"boxes": t["boxes"].to(device), "labels": t["labels"].to(device)} for t in targets]
        autocast = (
            torch.autocast(device.type, dtype=amp_dtype)
            if amp_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:
            losses = model(images, targets)
        total = sum(v.float() for v in losses.values())
        if not math.isfinite(float(total.detach())):
            terms = ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items())
            raise FloatingPointError(f"torchvision: non-finite loss at iteration {iteration}: {terms}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        seconds += time.perf_counter() - start
        if iteration % log_every == 0 or iteration == solver.max_iter:
            terms = " ".join(f"{k}={float(v):.4f}" for k, v in losses.items())
            print(
                f"torchvision iteration {iteration}/{solver.max_iter}: {terms}", file=sys.stderr, flush=True
            )
    del data  # the loader's workers stop here
    return seconds, amp_dtype


def evaluate_torchvision(
    model: nn.Module, cfg: DetectionConfig, val_set, device: torch.device, output_dir: str | None = None
) -> dict[str, Any]:
    """COCO metrics of ``model`` on ``val_set`` (see the module docstring); ``detections.json`` and
    ``metrics.json`` go to ``output_dir`` when given."""
    wrapped = EvaluatedDetector(model).to(device)
    return evaluate_detector(
        wrapped, val_set, device, output_dir, batch_size=cfg.test.ims_per_batch, progress=False
    )
