"""The FLOP-bound limit of a model on this machine: the dense-matmul peak measured in the same run, and the
images/s a model of a given multiply-add count would reach at that peak.

* **Peak** (multiply-adds per second): a square float32 ``torch.mm`` of ``n x n`` matrices, ``n**3``
  multiply-adds per call, at the run's thread count; the peak is ``n**3 /`` its median time (what the
  machine's BLAS reaches on a large dense product, not a datasheet figure).
* **Multiply-adds of a detector** per image: :func:`rcnn.detectors.summary.summarize_detector` at the
  image size (padded as the model pads it) and the test-time RoIs (convolutions and matrix products,
  ``torch.utils.flop_counter``; NMS, RoI pooling and box decoding count 0). The RoIs are those the region
  head ran on in the measured call, per image (:class:`RoICounter`): the RPN's ``post_nms_top_n_test``
  unless fewer proposals survive NMS, as on small images.
* **FLOP-bound images/s** = peak / multiply-adds per image; the **fraction** of a measured throughput is
  measured images/s / FLOP-bound images/s.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from rcnn.config_schema import ModelConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.summary import summarize_detector
from tools.benchmarks.timing import time_interleaved

FULL_MATMUL_N = 2048
QUICK_MATMUL_N = 512


def make_matmul(n: int, device: str, seed: int = 0) -> Callable[[], Tensor]:
    """``torch.mm`` of two random ``n x n`` float32 matrices into a preallocated output."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=gen).to(device)
    b = torch.randn(n, n, generator=gen).to(device)
    out = torch.empty(n, n, device=device)
    return lambda: torch.mm(a, b, out=out)


def measure_peak(n: int, device: str, *, reps: int = 5, warmup: int = 1) -> float:
    """The matmul peak in multiply-adds per second (wall time): ``n**3`` over the median of ``reps`` timed
    calls of :func:`make_matmul`, at the current thread count."""
    wall, _ = time_interleaved({"matmul": make_matmul(n, device)}, warmup=warmup, reps=reps, device=device)[
        "matmul"
    ]
    return n**3 / wall


def detector_macs(
    cfg: ModelConfig,
    num_classes: int,
    image_size: tuple[int, int],
    *,
    num_rois: int | None = None,
    size_divisibility: int | None = None,
) -> int:
    """Multiply-adds per image of the detector of ``cfg`` at ``image_size`` (H, W) on ``num_rois`` RoIs
    (default: its test-time ``post_nms_top_n``), counted on a model built on the ``meta`` device (shapes
    only: instant, no memory). size_divisibility: the padding multiple the benchmark sets on the model,
    when not the one it is built with."""
    with torch.device("meta"):
        model = build_detector(cfg, num_classes)
    if size_divisibility is not None:
        model.size_divisibility = size_divisibility
    return summarize_detector(model, image_size, num_rois=num_rois).macs


class RoICounter:
    """``with RoICounter(model) as counter: model(images)``: ``counter.rois``, the RoIs the region head
    (``model.roi_heads.box_head``) ran on in the block, all images together."""

    def __init__(self, model: nn.Module):
        self.box_head = model.roi_heads.box_head
        self.rois = 0

    def __enter__(self) -> RoICounter:
        self._hook = self.box_head.register_forward_pre_hook(self._count)
        return self

    def __exit__(self, *exc) -> None:
        self._hook.remove()

    def _count(self, module: nn.Module, args: tuple) -> None:
        self.rois += int(args[0].shape[0])  # (R, C, S, S)


def bound_images_per_second(peak_macs_per_s: float, macs_per_image: int) -> float:
    """Images/s at the FLOP-bound limit: every multiply-add at the matmul peak."""
    return peak_macs_per_s / macs_per_image
