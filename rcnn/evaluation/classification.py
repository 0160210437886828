"""Classification metrics: top-k error, centre-crop and 10-crop evaluation.

    errs = topk_errors(logits (N, C), targets (N,))      # {"top1_err": 0.25, "top5_err": 0.0}
    metrics = evaluate_classifier(model, val_loader, device, ten_crop=True)
    # {"top1_err", "top5_err", "loss", "num_images"}

Errors are fractions in [0, 1] (multiply by 100 for the percentages the papers quote).

Top-k with fewer than k classes: the top-k error is computed with ``min(k, C)`` guesses and still reported
under the nominal name (``top5_err`` for a 3-class problem counts a hit within the 3 guesses, so it is 0).

10-crop testing (AlexNet/ResNet papers): the loader yields ``(N, 10, 3, h, w)`` batches (4 corners and
the centre, and their horizontal flips, as ``rcnn.data.imagefolder.ten_crop_transform`` makes them);
the softmax is averaged over the 10 crops and the loss is the negative log of that averaged probability.

Under ``torchrun`` each process evaluates its own shard of the loader and the sums are all-reduced, so
every process returns the metrics of the whole split (give each process a disjoint shard).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rcnn.utils.comm import all_reduce_dict


def _topk_hits(scores: Tensor, targets: Tensor, ks: Sequence[int]) -> dict[int, int]:
    """Number of rows whose target is among the ``min(k, C)`` highest scores, for each ``k``."""
    if scores.dim() != 2:
        raise ValueError(f"expected scores of shape (N, C), got {tuple(scores.shape)}")
    if targets.shape != (scores.shape[0],):
        raise ValueError(f"expected targets of shape ({scores.shape[0]},), got {tuple(targets.shape)}")
    num_classes = scores.shape[1]
    kmax = min(max(ks), num_classes)
    top = scores.topk(kmax, dim=1).indices  # (N, kmax), best first
    match = top == targets.to(top.device).unsqueeze(1)  # (N, kmax)
    return {k: int(match[:, : min(k, num_classes)].any(dim=1).sum()) for k in ks}


def topk_errors(logits: Tensor, targets: Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-k error rates ``{"top{k}_err": fraction}`` of ``logits (N, C)`` against ``targets (N,)``.

    Any score that ranks like the logits works (probabilities too). With ``C < k`` the top-k error uses
    ``C`` guesses (see the module docstring). ``N == 0`` raises.
    """
    if logits.shape[0] == 0:
        raise ValueError("topk_errors needs at least one sample")
    hits = _topk_hits(logits, targets, ks)
    n = logits.shape[0]
    return {f"top{k}_err": 1.0 - hits[k] / n for k in ks}


def _forward_probs(model: nn.Module, images: Tensor) -> tuple[Tensor, bool]:
    """Class scores of a batch: logits for ``(N, 3, h, w)``, crop-averaged softmax for ``(N, 10, 3, h, w)``.

    Returns ``(scores, are_probabilities)``.
    """
    if images.dim() == 5:
        n, crops = images.shape[:2]
        out = model(images.flatten(0, 1))
        if isinstance(out, (tuple, list)):  # a network that returns auxiliary outputs in eval mode
            out = out[0]
        probs = F.softmax(out.float(), dim=1).view(n, crops, -1).mean(dim=1)  # (N, C)
        return probs, True
    if images.dim() != 4:
        raise ValueError(f"expected images (N, 3, H, W) or (N, crops, 3, H, W), got {tuple(images.shape)}")
    out = model(images)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out.float(), False


@torch.inference_mode()
def evaluate_classifier(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    device: torch.device | str,
    ten_crop: bool = False,
    *,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """Top-1/top-5 error and mean cross-entropy of ``model`` over ``loader`` (``(images, targets)``).

    ``ten_crop=True`` expects ``(N, 10, 3, h, w)`` image batches and averages the softmax over the crops;
    ``False`` expects ``(N, 3, h, w)``. The model is put in eval mode and its mode restored afterwards.
    Returns ``{"top1_err", "top5_err", "loss", "num_images"}`` (keys follow ``ks``).
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    sums = {"loss": 0.0, "count": 0.0, **{f"top{k}": 0.0 for k in ks}}
    try:
        for images, targets in loader:
            if ten_crop != (images.dim() == 5):
                want = "(N, 10, 3, h, w)" if ten_crop else "(N, 3, h, w)"
                raise ValueError(
                    f"ten_crop={ten_crop} expects image batches {want}, got {tuple(images.shape)}"
                )
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            scores, are_probs = _forward_probs(model, images)
            if are_probs:
                loss = F.nll_loss(scores.clamp_min(1e-12).log(), targets, reduction="sum")
            else:
                loss = F.cross_entropy(scores, targets, reduction="sum")
            for k, hit in _topk_hits(scores, targets, ks).items():
                sums[f"top{k}"] += hit
            sums["loss"] += float(loss)
            sums["count"] += targets.shape[0]
    finally:
        model.train(was_training)
    totals = all_reduce_dict(
        {key: torch.tensor(value, dtype=torch.float64) for key, value in sums.items()}, average=False
    )
    n = float(totals["count"])
    if n == 0:
        raise ValueError("evaluate_classifier: the loader yielded no images")
    metrics = {f"top{k}_err": 1.0 - float(totals[f"top{k}"]) / n for k in ks}
    metrics["loss"] = float(totals["loss"]) / n
    metrics["num_images"] = n
    return metrics
