"""Ops benchmark: our ``rcnn.ops`` NMS and RoI pooling against ``torchvision.ops`` called directly.

:func:`run_section` returns a markdown section for ``docs/benchmarks.md``: milliseconds per call of

* ``nms`` on 1000, 6000 and 12000 boxes (IoU 0.7, as the RPN's), ours :func:`rcnn.ops.nms` against
  ``torchvision.ops.nms``;
* ``batched_nms`` on 12000 boxes of 1, 20 and 80 classes (IoU 0.5, as the detection head's), ours
  :func:`rcnn.ops.batched_nms` against ``torchvision.ops.batched_nms``;
* ``roi_pool`` and ``roi_align``, forward and backward (``output.sum().backward()``), of 128, 512 and 1024
  RoIs on a (1 or 2, 256, 38, 63) feature map (stride 16 of a 600x1000 image) into 7x7 bins
  (``spatial_scale`` 1/16, RoIAlign ``sampling_ratio`` 2), ours :func:`rcnn.ops.roi_pool` /
  :func:`rcnn.ops.roi_align` against ``torchvision.ops.roi_pool`` / ``roi_align``.

Ours call torchvision's compiled kernels, so the target is no overhead of our own: a time within 5% of
torchvision's (ratio ours / torchvision <= 1.05). Each row also checks that the two give identical outputs
(kept indices; pooled features and the feature map's gradient) on the timed inputs. Boxes are seeded random
boxes in a 600x1000 image, most of them clustered around "objects" as proposals are (see
:func:`make_boxes`). Timings alternate the two repetition by repetition (the order flips every
repetition) after warm-up, with :func:`tools.benchmarks.timing.time_interleaved`, and report medians.

    python tools/benchmark.py --sections ops [--quick] [--device cuda] [--threads 1] [--reps 15]

writes it into ``docs/benchmarks.md`` (``--output FILE`` elsewhere); from the repository root,
``python -m tools.benchmarks.ops`` takes the same options and prints the markdown.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import Tensor

from rcnn import ops as rcnn_ops
from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring, section_main
from tools.benchmarks.timing import time_interleaved

IMAGE_HW = (600, 1000)
STRIDE = 16
FEATURE_HW = (math.ceil(IMAGE_HW[0] / STRIDE), math.ceil(IMAGE_HW[1] / STRIDE))  # (38, 63)
CHANNELS = 256
OUTPUT_SIZE = (7, 7)
SAMPLING_RATIO = 2
NMS_IOU = 0.7
BATCHED_NMS_IOU = 0.5
TARGET_RATIO = 1.05  # "within 5% of torchvision.ops"

# op name -> (torchvision's function, ours)
OPS: dict[str, tuple[Callable[..., Tensor], Callable[..., Tensor]]] = {
    "nms": (torchvision.ops.nms, rcnn_ops.nms),
    "batched_nms": (torchvision.ops.batched_nms, rcnn_ops.batched_nms),
    "roi_pool": (torchvision.ops.roi_pool, rcnn_ops.roi_pool),
    "roi_align": (torchvision.ops.roi_align, rcnn_ops.roi_align),
}


@dataclass(frozen=True)
class OpCase:
    """One row of the table: an op on ``n`` boxes (nms, batched_nms) or RoIs (roi_pool, roi_align)."""

    op: str  # a key of OPS
    n: int
    classes: int = 1  # batched_nms: distinct class ids
    batch: int = 1  # roi_pool / roi_align: images in the feature map

    @property
    def detail(self) -> str:
        if self.op == "nms":
            return f"{self.n} boxes, IoU {NMS_IOU}"
        if self.op == "batched_nms":
            classes = f"{self.classes} class" + ("es" if self.classes > 1 else "")
            return f"{self.n} boxes, {classes}, IoU {BATCHED_NMS_IOU}"
        h, w = FEATURE_HW
        return f"fwd+bwd, {self.n} RoIs, features {self.batch}x{CHANNELS}x{h}x{w}"


FULL_CASES = (
    OpCase("nms", 1000),
    OpCase("nms", 6000),
    OpCase("nms", 12000),
    OpCase("batched_nms", 12000, classes=1),
    OpCase("batched_nms", 12000, classes=20),
    OpCase("batched_nms", 12000, classes=80),
    OpCase("roi_pool", 128, batch=1),
    OpCase("roi_pool", 512, batch=2),
    OpCase("roi_pool", 1024, batch=2),
    OpCase("roi_align", 128, batch=1),
    OpCase("roi_align", 512, batch=2),
    OpCase("roi_align", 1024, batch=2),
)
QUICK_CASES = (
    OpCase("nms", 1000),
    OpCase("batched_nms", 12000, classes=1),
    OpCase("roi_pool", 128, batch=1),
    OpCase("roi_align", 128, batch=1),
)


# ----------------------------------------------------------------------------------------------- the inputs


def _random_boxes(m: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Centres uniform in the image; sides of 16-480 px (log-uniform), aspect ratio 1:2 to 2:1."""
    height, width = IMAGE_HW
    centres = torch.rand(m, 2, generator=gen) * torch.tensor([width, height], dtype=torch.float32)
    side = torch.empty(m).uniform_(math.log(16), math.log(480), generator=gen).exp()
    root_aspect = torch.empty(m).uniform_(math.log(0.5), math.log(2.0), generator=gen).exp().sqrt()
    return centres, torch.stack([side * root_aspect, side / root_aspect], dim=1)


def make_boxes(n: int, *, seed: int = 0) -> Tensor:
    """(n, 4) float32 x1y1x2y2 boxes in a 600x1000 image, as region proposals look: 3/4 of them jittered
    around n / 100 "objects" (centres by ~10% of the object's size, sides by ~15%), 1/4 anywhere; clipped to
    the image (every box keeps a side of several pixels)."""
    height, width = IMAGE_HW
    gen = torch.Generator().manual_seed(seed)
    object_centres, object_sizes = _random_boxes(max(1, n // 100), gen)
    n_background = n // 4
    n_near = n - n_background
    pick = torch.randint(0, len(object_centres), (n_near,), generator=gen)
    centres = object_centres[pick] + torch.randn(n_near, 2, generator=gen) * 0.1 * object_sizes[pick]
    sizes = object_sizes[pick] * (torch.randn(n_near, 2, generator=gen) * 0.15).exp()
    background_centres, background_sizes = _random_boxes(n_background, gen)
    centres = torch.cat([centres, background_centres])
    sizes = torch.cat([sizes, background_sizes])
    limit = torch.tensor([width, height], dtype=torch.float32)
    centres = torch.minimum(centres.clamp(min=0), limit)
    low = torch.minimum((centres - sizes / 2).clamp(min=0), limit)
    high = torch.minimum((centres + sizes / 2).clamp(min=0), limit)
    return torch.cat([low, high], dim=1)


def make_scores(n: int, *, seed: int = 0) -> Tensor:
    """(n,) float32 distinct scores in [0, 1), in random order (no ties: the kept order is well defined)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=gen).to(torch.float32) / n


def make_inputs(case: OpCase, device: str = "cpu") -> dict[str, Tensor]:
    """The seeded inputs of ``case`` on ``device``: boxes, scores (and class ids) for the NMS ops; a
    feature map of ``CHANNELS`` channels and (K, 5) ``[batch_index, x1, y1, x2, y2]`` RoIs for the RoI ops."""
    if case.op in ("nms", "batched_nms"):
        inputs = {"boxes": make_boxes(case.n, seed=0), "scores": make_scores(case.n, seed=1)}
        if case.op == "batched_nms":
            gen = torch.Generator().manual_seed(2)
            inputs["idxs"] = torch.randint(0, case.classes, (case.n,), generator=gen)
    else:
        gen = torch.Generator().manual_seed(3)
        features = torch.randn(case.batch, CHANNELS, *FEATURE_HW, generator=gen)
        image_index = (torch.arange(case.n) % case.batch).to(torch.float32)
        rois = torch.cat([image_index[:, None], make_boxes(case.n, seed=4)], dim=1)
        inputs = {"features": features, "rois": rois}
    return {name: value.to(device) for name, value in inputs.items()}


def make_runs(case: OpCase, inputs: dict[str, Tensor]) -> dict[str, Callable[[], tuple[Tensor, ...]]]:
    """``{"torchvision": run, "ours": run}``; a run returns the kept indices (NMS ops) or the pooled
    features and the gradient of their sum with respect to the feature map (RoI ops). Each RoI run has its
    own copy of the feature map (a leaf requiring grad), its gradient reset every call."""
    runs = {}
    for name, fn in zip(("torchvision", "ours"), OPS[case.op]):
        if case.op == "nms":
            runs[name] = _nms_run(fn, inputs["boxes"], inputs["scores"], NMS_IOU)
        elif case.op == "batched_nms":
            runs[name] = _batched_nms_run(fn, inputs["boxes"], inputs["scores"], inputs["idxs"])
        else:
            options = {"output_size": OUTPUT_SIZE, "spatial_scale": 1 / STRIDE}
            if case.op == "roi_align":
                options["sampling_ratio"] = SAMPLING_RATIO
            runs[name] = _roi_run(fn, inputs["features"], inputs["rois"], options)
    return runs


def _nms_run(fn, boxes: Tensor, scores: Tensor, iou: float) -> Callable[[], tuple[Tensor, ...]]:
    def run() -> tuple[Tensor, ...]:
        return (fn(boxes, scores, iou),)

    return run


def _batched_nms_run(fn, boxes: Tensor, scores: Tensor, idxs: Tensor) -> Callable[[], tuple[Tensor, ...]]:
    def run() -> tuple[Tensor, ...]:
        return (fn(boxes, scores, idxs, BATCHED_NMS_IOU),)

    return run


def _roi_run(fn, features: Tensor, rois: Tensor, options: dict) -> Callable[[], tuple[Tensor, ...]]:
    leaf = features.detach().clone().requires_grad_(True)

    def run() -> tuple[Tensor, ...]:
        leaf.grad = None
        out = fn(leaf, rois, **options)
        out.sum().backward()
        return out.detach(), leaf.grad

    return run


# ------------------------------------------------------------------------------------------------ checking


def compare_outputs(ours: tuple[Tensor, ...], theirs: tuple[Tensor, ...]) -> str:
    """ "identical" when every tensor is ``torch.equal`` to torchvision's (with the kept count for the NMS
    ops); "allclose (max |diff| ...)" when float tensors differ by rounding only; else "differ: ..."."""
    kept = f" ({len(ours[0])} kept)" if ours[0].dtype == torch.int64 else ""
    if len(ours) == len(theirs) and all(torch.equal(a, b) for a, b in zip(ours, theirs)):
        return "identical" + kept
    worst = 0.0
    for a, b in zip(ours, theirs):
        if a.shape != b.shape:
            return f"differ: shape {tuple(a.shape)} vs {tuple(b.shape)}"
        if not a.is_floating_point():
            if not torch.equal(a, b):
                only = set(a.tolist()) ^ set(b.tolist())
                return f"differ: {len(only)} indices kept by one only" if only else "differ: kept order"
            continue
        if not torch.allclose(a, b, rtol=1e-5, atol=1e-5):
            return f"differ (max |diff| {float((a - b).abs().max()):.1e})"
        worst = max(worst, float((a - b).abs().max()))
    return f"allclose (max |diff| {worst:.0e})"


def _check_device(outputs: dict[str, tuple[Tensor, ...]], device: str) -> None:
    """Outputs must come back on the device asked for (nothing fell back to the CPU)."""
    want = torch.device(device).type
    for name, tensors in outputs.items():
        for tensor in tensors:
            if tensor.device.type != want:
                raise RuntimeError(f"{name}: output on {tensor.device}, expected {device}")


# ------------------------------------------------------------------------------------------------- the table


def run_section(
    *, device: str = "cpu", quick: bool = False, threads: int = 1, reps: int | None = None
) -> str:
    """The markdown section ``## Ops: ours vs torchvision.ops`` (see the module docstring).

    device: "cpu" or "cuda[:i]"; quick: the smallest case of each op, 3 repetitions (a few seconds on one
    CPU thread); threads: intra-op CPU threads (1 by default: on a machine shared with other work, one
    thread per process times far more steadily); reps: timed repetitions (default 15, quick 3).
    """
    cases = QUICK_CASES if quick else FULL_CASES
    reps = reps or (3 if quick else 15)
    warmup = 1 if quick else 2
    rows = []
    with measuring(device, threads):
        for case in cases:
            runs = make_runs(case, make_inputs(case, device))
            outputs = {name: run() for name, run in runs.items()}  # also a first warm-up call
            _check_device(outputs, device)
            same = compare_outputs(outputs["ours"], outputs["torchvision"])
            times = time_interleaved(runs, warmup=warmup, reps=reps, device=device)
            rows.append(_row(case, times, same))
    return _markdown(rows, device=device, threads=threads, reps=reps, warmup=warmup, quick=quick)


def _row(case: OpCase, times: dict, same: str) -> list[str]:
    tv_wall, tv_cpu = times["torchvision"]
    ours_wall, ours_cpu = times["ours"]
    ratio = ours_wall / tv_wall
    cpu_ratio = ours_cpu / tv_cpu if tv_cpu > 0 else math.nan
    return [
        case.op,
        case.detail,
        f"{tv_wall * 1e3:.2f}",
        f"{ours_wall * 1e3:.2f}",
        f"**{ratio:.2f}** ({cpu_ratio:.2f})",
        "yes" if ratio <= TARGET_RATIO else "no",
        same,
    ]


def _markdown(rows, *, device, threads, reps, warmup, quick) -> str:
    header = [
        "op", "case", "torchvision ms", "ours ms", "ratio ours / tv (CPU time)", "within 5% (ratio <= 1.05)",
        "outputs",
    ]  # fmt: skip
    lines = ["## Ops: ours vs torchvision.ops", ""] + markdown_table(header, rows)
    default_reps = 3 if quick else 15
    command = command_line(
        "ops", device=device, quick=quick, threads=threads,
        reps=reps if reps != default_reps else None,
    )  # fmt: skip
    lines += measured_on(device, threads, command)
    lines += [
        f"- Times are medians of {reps} repetitions per op after {warmup} warm-up call(s) (plus the checked "
        "call), ours and torchvision's alternating repetition by repetition (order flipped each time) in "
        "one process"
        + (", the device synchronised around each call" if device.startswith("cuda") else "")
        + "; the ratio is ours / torchvision of those medians (lower: ours faster), and in parentheses the "
        "same ratio of process CPU time, which other processes' load disturbs less. The target, \"within "
        f'5% of torchvision.ops", means a ratio <= {TARGET_RATIO}; the two call the same kernels, so a '
        "ratio a few % either side of 1 is timing noise.",
        "- torchvision: `torchvision.ops.nms`, `batched_nms`, `roi_pool`, `roi_align` called directly; "
        "ours: `rcnn.ops` of the same names (float32 inputs, so the wrappers' dtype casts are no-ops).",
        "- Boxes: seeded, in a 600x1000 image, 3/4 jittered around n / 100 random objects (as proposals "
        "cluster), 1/4 anywhere, sides 16-480 px; scores distinct, in random order; class ids uniform.",
        f"- RoI ops: a seeded N(0, 1) feature map of {CHANNELS} channels (the stride-16 map of a 600x1000 "
        f"image, {FEATURE_HW[0]}x{FEATURE_HW[1]}) requiring grad, RoIs as (K, 5) `[batch_index, x1, y1, "
        f"x2, y2]` alternating between the images; output {OUTPUT_SIZE[0]}x{OUTPUT_SIZE[1]}, "
        f"spatial_scale 1/{STRIDE}, RoIAlign sampling_ratio {SAMPLING_RATIO}, aligned=False; one call is "
        "the forward pass and `output.sum().backward()`.",
        "- batched_nms is not a pass-through: ours (`rcnn.ops.batched_nms`) offsets the boxes by class "
        "rank (not by raw id) in float32 and runs one NMS, and above 1000 boxes on the CPU runs one NMS "
        "per class, as torchvision does there; so the 12000-box rows measure the same algorithm.",
        "- outputs: ours against torchvision's on the timed inputs: kept indices (count in parentheses), "
        "or pooled features and the feature map's gradient; `identical` is `torch.equal` on all, "
        "`allclose` a difference of float rounding only (e.g. CUDA backward kernels accumulate with "
        "atomics, in no fixed order).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    section_main(__doc__, run_section, argv, quick_help="smallest case of each op, 3 repetitions")


if __name__ == "__main__":
    main()
