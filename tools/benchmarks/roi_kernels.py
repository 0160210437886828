"""Our CPU RoIAlign kernels against torchvision's, at the detectors' sizes.

:func:`run_section` returns a markdown section for ``docs/benchmarks.md``: milliseconds per call of
:class:`rcnn.ops.RoIAlign` (what the detectors pool with) and of ``torchvision.ops.roi_align`` with the same
settings, for

* inference (no gradient): ours runs :func:`rcnn.ops.roi_align_nhwc.roi_align_nhwc` (channels-last,
  threaded over RoIs), on a channels-last map as the optimized detector has and on an NCHW one;
* training (forward, then ``backward`` of a random upstream gradient): ours runs the same forward and the
  separable backward (:func:`rcnn.ops.roi_align_separable.roi_align_separable`).

Cases: the quick start's map (ResNet-18/16 at stride 8 of a 256x256 image: (2, 64, 32, 32), 32 RoIs per
image in training, 100 at test) and ResNet-50 C4's (stride 16 of 600x1000: (1 or 2, 1024, 38, 63), 128
RoIs per image in training, 300 at test), 14x14 bins, ``sampling_ratio`` 2. Each row checks that the
outputs (and the map's gradients) agree. Timings alternate the two repetition by repetition with
:func:`tools.benchmarks.timing.time_interleaved` and report medians.

    python tools/benchmark.py --sections roi_kernels [--quick] [--threads 1] [--reps 15]

writes it into ``docs/benchmarks.md`` (``--output FILE`` elsewhere); from the repository root,
``python -m tools.benchmarks.roi_kernels`` takes the same options and prints the markdown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import Tensor

from rcnn.ops import RoIAlign
from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring, section_main
from tools.benchmarks.timing import time_interleaved

OUTPUT_SIZE = (14, 14)
SAMPLING_RATIO = 2


@dataclass(frozen=True)
class KernelCase:
    """One row: a map of ``(batch, channels, height, width)``, ``rois_per_image`` RoIs per image."""

    name: str
    batch: int
    channels: int
    height: int
    width: int
    stride: int
    rois_per_image: int
    training: bool
    channels_last: bool = False


FULL_CASES = (
    KernelCase("synthetic, inference", 1, 64, 32, 32, 8, 100, False, True),
    KernelCase("synthetic, inference (NCHW map)", 1, 64, 32, 32, 8, 100, False),
    KernelCase("synthetic, training", 2, 64, 32, 32, 8, 32, True),
    KernelCase("ResNet-50 C4, inference", 1, 1024, 38, 63, 16, 300, False, True),
    KernelCase("ResNet-50 C4, inference (NCHW map)", 1, 1024, 38, 63, 16, 300, False),
    KernelCase("ResNet-50 C4, training", 2, 1024, 38, 63, 16, 128, True),
)
QUICK_CASES = (
    KernelCase("synthetic, inference", 1, 16, 16, 16, 8, 20, False, True),
    KernelCase("synthetic, training", 2, 16, 16, 16, 8, 8, True),
)


def make_inputs(case: KernelCase, seed: int = 0) -> tuple[Tensor, list[Tensor]]:
    """The map ``(B, C, H, W)`` and per-image boxes ``(K, 4)`` in image pixels (some partly off the image)."""
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(case.batch, case.channels, case.height, case.width, generator=gen)
    if case.channels_last:
        features = features.contiguous(memory_format=torch.channels_last)
    size = torch.tensor([case.width, case.height], dtype=torch.float32) * case.stride
    boxes = []
    for _ in range(case.batch):
        wh = (torch.rand(case.rois_per_image, 2, generator=gen) * 0.5 + 0.02) * size
        xy = torch.rand(case.rois_per_image, 2, generator=gen) * size * 1.05 - wh / 2
        boxes.append(torch.cat([xy, xy + wh], dim=1))
    return features, boxes


def make_runs(case: KernelCase, features: Tensor, boxes: list[Tensor]) -> dict[str, Callable[[], tuple]]:
    """``{"torchvision": run, "ours": run}``; each returns (output,) or (output, map gradient)."""
    scale = 1.0 / case.stride
    ours = RoIAlign(OUTPUT_SIZE, scale, SAMPLING_RATIO)
    grad_out = torch.randn(
        sum(len(b) for b in boxes), case.channels, *OUTPUT_SIZE, generator=torch.Generator().manual_seed(1)
    )

    def pool(name: str, x: Tensor) -> Tensor:
        if name == "ours":
            return ours(x, boxes)
        return torchvision.ops.roi_align(x, boxes, OUTPUT_SIZE, scale, SAMPLING_RATIO, False)

    def run_for(name: str) -> Callable[[], tuple]:
        def run() -> tuple:
            if not case.training:
                with torch.inference_mode():
                    return (pool(name, features),)
            x = features.detach().requires_grad_(True)
            out = pool(name, x)
            out.backward(grad_out)
            return out.detach(), x.grad

        return run

    return {"torchvision": run_for("torchvision"), "ours": run_for("ours")}


def compare(ours: tuple, theirs: tuple) -> str:
    worst = max(float((a - b).abs().max()) if a.numel() else 0.0 for a, b in zip(ours, theirs))
    scale = max(float(b.abs().max()) if b.numel() else 0.0 for b in theirs) or 1.0
    verdict = "same" if worst <= 1e-4 * max(scale, 1.0) else "differ"
    return f"{verdict} (max diff {worst:.0e})"


def run_section(
    *, device: str = "cpu", quick: bool = False, threads: int = 1, reps: int | None = None
) -> str:
    """The markdown section ``## RoIAlign CPU kernels: ours vs torchvision`` (CPU only)."""
    if device != "cpu":
        raise ValueError("the roi_kernels section measures CPU kernels: run it with --device cpu")
    cases = QUICK_CASES if quick else FULL_CASES
    reps = reps or (3 if quick else 15)
    rows = []
    with measuring(device, threads):
        for case in cases:
            features, boxes = make_inputs(case)
            runs = make_runs(case, features, boxes)
            outputs = {name: run() for name, run in runs.items()}
            same = compare(outputs["ours"], outputs["torchvision"])
            times = time_interleaved(runs, warmup=2, reps=reps, device=device)
            tv, ours = times["torchvision"][0], times["ours"][0]
            rows.append(
                [
                    case.name,
                    f"({case.batch}, {case.channels}, {case.height}, {case.width})"
                    + (" NHWC" if case.channels_last else ""),
                    str(case.batch * case.rois_per_image),
                    f"{1000 * tv:.2f}",
                    f"{1000 * ours:.2f}",
                    f"**{tv / ours:.2f}x**",
                    same,
                ]
            )
    command = command_line("roi_kernels", device=device, quick=quick, threads=threads, reps=reps)
    lines = [
        "## RoIAlign CPU kernels: ours vs torchvision",
        "",
    ]
    header = [
        "case",
        "map (N, C, H, W)",
        "RoIs",
        "torchvision ms",
        "ours ms",
        "speed-up",
        "outputs (and gradients)",
    ]
    lines += markdown_table(header, rows)
    lines += measured_on(device, threads, command)
    lines += [
        f"- 14x14 bins, `sampling_ratio` {SAMPLING_RATIO}, `aligned=False`; seeded random maps and boxes. "
        "Ours: `rcnn.ops.RoIAlign` as the detectors call it; torchvision: `torchvision.ops.roi_align` with "
        "the same arguments.",
        "- Inference rows: forward under `torch.inference_mode()`; ours is the channels-last kernel "
        "(`rcnn.ops.roi_align_nhwc`), reading an NHWC map in place or permuting an NCHW one first. Training "
        "rows: forward and backward of a fixed random upstream gradient; ours is that forward and the "
        "separable backward (`rcnn.ops.roi_align_separable`).",
        f"- Medians of {reps} repetitions after 2 warm-up calls, the two alternating (order flipped every "
        "repetition) in one process.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    section_main(__doc__, run_section, argv, quick_help="tiny maps, few repetitions (seconds)")


if __name__ == "__main__":
    main()
