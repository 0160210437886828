"""Efficiency benchmark: the classifier forward pass against the machine's measured dense-matmul peak.

:func:`run_section` returns a markdown section for ``docs/benchmarks.md``: for VGG-16 and ResNet-50 at
224x224, batch 1 and 8, in eval mode under ``torch.inference_mode()``, the achieved multiply-adds per second
of the forward pass of :func:`backbones.build_classifier` (1000 classes), in the default (NCHW) and the
channels-last memory format, as a fraction of the peak measured in the same run.

* **Peak**: a square float32 ``torch.mm`` of ``n x n`` matrices (n = 2048), ``n**3`` multiply-adds per
  call, at the same thread count; the peak is ``n**3 /`` its median time. This is what the machine's BLAS
  reaches on a large dense product, not a datasheet figure.
* **Multiply-adds** of the forward pass: :func:`backbones.summary.summarize` (per image; convolutions and
  linear layers, everything else counted 0, as the published 15.5 G / 4.1 G figures), times the batch.
* **Time**: median wall time of the forward pass of the whole batch.

The matmul and every network / batch / memory-format case are timed in one
:func:`tools.benchmarks.timing.time_interleaved` call: one repetition runs each of them once, in an order
flipped every repetition, so that other load on the machine spreads over all of them alike. Weights are
random (seeded); inputs random.

    python tools/benchmark.py --sections efficiency [--quick] [--device cuda] [--threads 1] [--reps N]

writes it into ``docs/benchmarks.md`` (``--output FILE`` elsewhere); from the repository root,
``python -m tools.benchmarks.efficiency`` takes the same options and prints the markdown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import backbones
from backbones.summary import summarize
from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring, section_main
from tools.benchmarks.flop_bound import FULL_MATMUL_N, QUICK_MATMUL_N, make_matmul
from tools.benchmarks.timing import time_interleaved

MEMORY_FORMATS = ("contiguous", "channels_last")
TARGET = 0.5  # fraction of the matmul peak the issue asks of VGG-16 and ResNet-50


@dataclass(frozen=True)
class Case:
    """A network at one square input size and the batch sizes it runs at."""

    name: str
    size: int
    batches: tuple[int, ...]


FULL_CASES = (Case("vgg16", 224, (1, 8)), Case("resnet50", 224, (1, 8)))
QUICK_CASES = (Case("resnet18", 64, (1, 2)),)


def count_macs(model: nn.Module, size: int) -> int:
    """Multiply-adds of the forward pass of one ``3 x size x size`` image (:mod:`backbones.summary`)."""

    return summarize(model, (3, size, size)).macs


def build_model(name: str, device: str, memory_format: str, seed: int = 0) -> nn.Module:
    """Our classifier ``name`` (1000 classes) in eval mode, in ``memory_format``."""

    torch.manual_seed(seed)
    model = backbones.build_classifier(name, num_classes=1000).eval().to(device)
    if memory_format == "channels_last":
        model = model.to(memory_format=torch.channels_last)
    return model


def make_forward(model: nn.Module, images: Tensor) -> Callable[[], Tensor]:
    def forward() -> Tensor:
        with torch.inference_mode():
            return model(images)

    return forward


def make_images(batch: int, size: int, device: str, memory_format: str, seed: int = 0) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=gen).to(device)
    if memory_format == "channels_last":
        images = images.contiguous(memory_format=torch.channels_last)
    return images


# ------------------------------------------------------------------------------------------------- the table


def run_section(
    *, device: str = "cpu", quick: bool = False, threads: int = 1, reps: int | None = None
) -> str:
    """The markdown section ``## Efficiency: classifier forward vs the measured matmul peak`` (see the
    module docstring).

    device: "cpu" or "cuda[:i]"; quick: ResNet-18 at 64x64, batch 1 and 2, a 512x512 matmul (a few
    seconds); threads: intra-op CPU threads for everything (1 by default); reps: timed repetitions
    (default 5).
    """
    cases = QUICK_CASES if quick else FULL_CASES
    n = QUICK_MATMUL_N if quick else FULL_MATMUL_N
    asked_reps, reps = reps, reps or 5
    warmup = 1
    with measuring(device, threads):
        runs: dict[str, Callable[[], object]] = {"matmul": make_matmul(n, device)}
        work: dict[str, tuple[Case, int, str, int]] = {}  # run name -> (case, batch, format, MACs/image)
        for case in cases:
            models = {fmt: build_model(case.name, device, fmt) for fmt in MEMORY_FORMATS}
            macs = count_macs(models["contiguous"], case.size)
            for batch in case.batches:
                for fmt, model in models.items():
                    key = f"{case.name} {case.size} batch {batch} {fmt}"
                    runs[key] = make_forward(model, make_images(batch, case.size, device, fmt))
                    work[key] = (case, batch, fmt, macs)
        times = time_interleaved(runs, warmup=warmup, reps=reps, device=device)
    peak_wall, peak_cpu = n**3 / times["matmul"][0], n**3 / times["matmul"][1]
    rows = [[f"dense matmul {n}x{n} float32", "-", "-", "-", f"{n**3 / 1e9:.3f}"]]
    rows[0] += [f"{1e3 * times['matmul'][0]:.2f}", f"{peak_wall / 1e9:.2f}", "1.00", "1.00"]
    for key, (case, batch, fmt, macs) in work.items():
        wall, cpu = times[key]
        total = macs * batch
        rows.append(
            [
                case.name,
                f"{case.size}x{case.size}",
                str(batch),
                fmt.replace("_", "-"),
                f"{macs / 1e9:.3f}",
                f"{1e3 * wall:.2f}",
                f"{total / wall / 1e9:.2f}",
                f"**{total / wall / peak_wall:.2f}**",
                f"{total / cpu / peak_cpu:.2f}",
            ]
        )
    command = command_line("efficiency", device=device, quick=quick, threads=threads, reps=asked_reps)
    return _markdown(rows, n=n, device=device, threads=threads, reps=reps, warmup=warmup, command=command)


def _markdown(rows, *, n, device, threads, reps, warmup, command) -> str:
    header = [
        "network", "input", "batch", "memory format", "GMACs per image", "ms per call", "GMAC/s",
        "fraction of peak", "fraction (CPU time)",
    ]  # fmt: skip
    lines = ["## Efficiency: classifier forward vs the measured matmul peak", ""]
    lines += markdown_table(header, rows)
    lines += measured_on(device, threads, command)
    lines += [
        f"- Peak: median time of `torch.mm` of two random {n}x{n} float32 matrices, {n}^3 multiply-adds per "
        "call (first row); the fractions are achieved multiply-adds per second over that peak (target: "
        f">= {TARGET:.2f} for VGG-16 and ResNet-50), and in the last column the same with process CPU time "
        "for both, which other processes' load disturbs less.",
        "- Networks: `backbones.build_classifier(name, num_classes=1000)`, random weights, eval mode, "
        "forward of the whole batch under `torch.inference_mode()`; channels-last: weights and input in "
        "`torch.channels_last`. Multiply-adds per image from `backbones.summary.summarize` (convolutions "
        "and linear layers only), times the batch.",
        f"- Medians of {reps} repetitions after {warmup} warm-up; the matmul and every row are timed "
        "interleaved in one process (each runs once per repetition, the order flipped each time).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    section_main(__doc__, run_section, argv, quick_help="ResNet-18 at 64x64, a 512x512 matmul")


if __name__ == "__main__":
    main()
