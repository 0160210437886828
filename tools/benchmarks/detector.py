"""Detector benchmark: our Faster R-CNN against torchvision's ``FasterRCNN`` on the same trunk and head.

:func:`run_section` returns a markdown section for ``docs/benchmarks.md``: inference images/s and peak memory
at batch 1 and 4, training iterations/s and peak memory at batch 2, for

* 600x1000 images: ``configs/faster_rcnn/resnet50_c4.yaml`` (ResNet-50 C4, RoI pooling 14x14, 300
  proposals, 80 classes as COCO);
* 256x256 images: ``configs/faster_rcnn/synthetic_resnet18.yaml`` (the quickstart's ResNet-18 of width 16,
  RoIAlign 14x14, 100 proposals, 9 classes).

The torchvision model is :func:`tools.benchmarks.torchvision_pair.torchvision_faster_rcnn` of ours: the same
trunk and region head modules, copies of the RPN head and predictor, our anchors and pooler, no resizing.
Both configs run with ``model.rpn.min_size=0`` so that the two compute the same detections (difference 1 of
that module). Weights are random (seeded); the RPN's objectness and the class scores are scaled so that
their logits have a few units of spread, as a trained model's, rather than the near-constant (or, on
the activations of a deep un-normalised trunk, saturated) outputs of a fresh initialisation.

"ours" is the model as built; "ours, optimized" is a copy after
:meth:`~rcnn.detectors.generalized_rcnn.GeneralizedRCNN.optimize_for_inference` (batch norm folded,
channels-last) for inference, and for training the model with a channels-last trunk and region head
trained under autocast as ``solver.channels_last: true`` and ``solver.amp: true`` train it (bf16 on a CPU
with native bf16, fp16 on CUDA); torchvision and "ours" train in fp32. Timings alternate the models
repetition by repetition (the order flips every repetition) after warm-up, and report medians (at full size,
of as many repetitions as make :data:`MIN_SECONDS` of timed calls per model). Peak memory
(:mod:`tools.benchmarks.peak_memory`) on the CPU is measured in a fresh process per model and case after one
untimed call (the peak resident set during the runs, ``VmHWM`` reset just before them, minus the resident
set before them); on CUDA it is ``torch.cuda.max_memory_allocated``.

Each inference row also gives the fraction of the FLOP-bound limit (:mod:`tools.benchmarks.flop_bound`)
that each model reaches: the machine's dense-matmul peak is measured in the same run (a float32 ``torch.mm``
of 2048x2048 matrices, 512 with ``--quick``, at the run's thread count, before and after the cases; the
higher of the two medians), the multiply-adds per image come from
:func:`rcnn.detectors.summary.summarize_detector` at the case's image size on the RoIs per image that our
region head ran on in the compared call (the RPN's ``post_nms_top_n_test`` unless fewer proposals survive
NMS; torchvision's model runs the same layers on the same proposals), the FLOP-bound
images/s are peak / multiply-adds per image, and the fraction is measured images/s over that bound.

    python tools/benchmark.py --sections detector [--quick] [--device cuda] [--threads 1]

writes it into ``docs/benchmarks.md`` (``--output FILE`` elsewhere); from the repository root,
``python -m tools.benchmarks.detector`` takes the same options and prints the markdown.
"""

from __future__ import annotations

import math
from dataclasses import asdict

import torch

from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring, section_main
from tools.benchmarks.detector_models import (
    FULL_CASES,
    QUICK_CASES,
    Case,
    build_models,
    load_model_config,
    make_inference,
    make_inputs,
    make_step,
    training_amp_dtype,
)
from tools.benchmarks.flop_bound import (
    FULL_MATMUL_N,
    QUICK_MATMUL_N,
    RoICounter,
    bound_images_per_second,
    detector_macs,
    measure_peak,
)
from tools.benchmarks.peak_memory import peak_memory_mb
from tools.benchmarks.timing import time_interleaved

MIN_SECONDS = 10.0  # timed seconds per model and row at least (full size): many repetitions of fast rows


# ------------------------------------------------------------------------------------------------- checking


def compare_detections(ours: list[dict], theirs: list[dict]) -> str:
    """ "same (max |diff| ...)" when every image has the same number of detections with the same labels,
    and boxes / scores within 1e-3; else what differs."""
    worst_box = worst_score = 0.0
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a["boxes"].shape != b["boxes"].shape:
            return f"differ: image {i} has {len(a['boxes'])} vs {len(b['boxes'])} detections"
        if not torch.equal(a["labels"], b["labels"]):
            return f"differ: labels of image {i}"
        if len(a["boxes"]):
            worst_box = max(worst_box, float((a["boxes"] - b["boxes"]).abs().max()))
            worst_score = max(worst_score, float((a["scores"] - b["scores"]).abs().max()))
    counts = "/".join(str(len(a["boxes"])) for a in ours)
    verdict = "same" if worst_box <= 1e-3 and worst_score <= 1e-3 else "differ"
    return f"{verdict} ({counts} dets, max diff {worst_box:.0e} px, {worst_score:.0e} score)"


# ------------------------------------------------------------------------------------------------- the table


def _ips(batch: int, seconds: float) -> str:
    return f"{batch / seconds:.2f}" if seconds < math.inf else "-"


def run_section(
    *, device: str = "cpu", quick: bool = False, threads: int = 1, reps: int | None = None
) -> str:
    """The markdown section ``## Detector: ours vs torchvision FasterRCNN`` (see the module docstring).

    device: "cpu" or "cuda[:i]"; quick: one tiny case, few repetitions (~1 minute on 2 CPU cores);
    threads: intra-op CPU threads for both models (1 by default: on a machine shared with other work, one
    thread per process times far more steadily); reps: timed repetitions (default 3, quick 2).
    """
    cases = QUICK_CASES if quick else FULL_CASES
    reps = reps or (2 if quick else 3)
    min_seconds = 0.0 if quick else MIN_SECONDS
    warmup = 1
    rows, checks = [], []
    n = QUICK_MATMUL_N if quick else FULL_MATMUL_N
    with measuring(device, threads):
        peak = measure_peak(n, device, reps=max(reps, 5))
        inference_rows = []  # (row, MACs per image, {model: images/s}) to complete with the peak at the end
        for case in cases:
            cfg = load_model_config(case)
            models = build_models(case, training=False, device=device)
            for batch in case.infer_batches:
                images, _ = make_inputs(case, batch, device)
                runs = {name: make_inference(m, images) for name, m in models.items()}
                outputs = {name: run() for name, run in runs.items() if name != "ours"}
                with RoICounter(models["ours"]) as counter:  # torchvision's shares the head: not counted
                    outputs["ours"] = runs["ours"]()
                rois = round(counter.rois / batch)
                macs = detector_macs(cfg, case.num_classes, (case.height, case.width), num_rois=rois)
                _check_device(outputs, device)
                times = time_interleaved(
                    runs, warmup=warmup, reps=reps, device=device, min_seconds=min_seconds
                )
                peaks = {n: _peak(case, n, "infer", batch, device, threads, quick) for n in models}
                rows.append(_row(case, f"inference, batch {batch}", batch, times, peaks, "images/s"))
                inference_rows.append((rows[-1], rois, macs, {m: batch / t[0] for m, t in times.items()}))
                same = compare_detections(outputs["ours_optimized"], outputs["torchvision"])
                same_plain = compare_detections(outputs["ours"], outputs["torchvision"])
                checks.append(f"{case.name}, batch {batch}: ours {same_plain}; optimized {same}")
            del models
            models = build_models(case, training=True, device=device)
            images, targets = make_inputs(case, case.train_batch, device)
            runs = {
                name: make_step(m, images, targets, training_amp_dtype(name, device))
                for name, m in models.items()
            }
            times = time_interleaved(runs, warmup=warmup, reps=reps, device=device, min_seconds=min_seconds)
            peaks = {n: _peak(case, n, "train", case.train_batch, device, threads, quick) for n in models}
            rows.append(_row(case, f"training, batch {case.train_batch}", 1, times, peaks, "iterations/s"))
            rows[-1][-1:-1] = ["-"] * len(BOUND_COLUMNS)  # the bound is of inference (forward) MACs
            del models
        peak = max(peak, measure_peak(n, device, reps=max(reps, 5)))  # the higher: less disturbed by load
    for row, rois, macs, ips in inference_rows:
        row[-1:-1] = [str(rois), *bound_cells(macs, peak, ips, MODELS_IN_TABLE)]
    return _markdown(
        rows, checks, device=device, threads=threads, reps=reps, warmup=warmup, quick=quick,
        min_seconds=min_seconds, peak=peak, n=n,
    )  # fmt: skip


MODELS_IN_TABLE = ("torchvision", "ours", "ours_optimized")
BOUND_COLUMNS = [
    "RoIs per image", "GMACs per image", "FLOP-bound images/s", "fraction tv", "fraction ours",
    "fraction optimized",
]  # fmt: skip


def bound_cells(macs: int, peak: float, images_per_s: dict[str, float], models: tuple[str, ...]) -> list[str]:
    """GMACs per image, FLOP-bound images/s (``peak`` MAC/s over ``macs``) and, per model of ``models``,
    its measured images/s as a fraction of that bound (3 significant digits)."""
    bound = bound_images_per_second(peak, macs)
    cells = [f"{macs / 1e9:.3f}", f"{bound:.2f}"]
    return cells + [f"{images_per_s[m] / bound:.3g}" for m in models]


def _peak(case: Case, model: str, mode: str, batch: int, device: str, threads: int, quick: bool) -> float:
    spec = {
        "case": asdict(case),
        "model": model,
        "mode": mode,
        "batch": batch,
        "device": device,
        "threads": threads,
        "runs": 1 if quick else 2,
    }
    return peak_memory_mb(spec, device)


def _check_device(outputs: dict[str, list[dict]], device: str) -> None:
    """Detections must come back on the device asked for (nothing fell back to the CPU)."""
    want = torch.device(device).type
    for name, dets in outputs.items():
        for det in dets:
            for key, value in det.items():
                if value.device.type != want:
                    raise RuntimeError(f"{name}: detections[{key!r}] on {value.device}, expected {device}")


def _row(case: Case, what: str, per_call: int, times: dict, peaks: dict, unit: str) -> list[str]:
    tv_wall, tv_cpu = times["torchvision"]
    ours_wall, _ = times["ours"]
    opt_wall, opt_cpu = times["ours_optimized"]
    return [
        case.name,
        what,
        _ips(per_call, tv_wall),
        _ips(per_call, ours_wall),
        _ips(per_call, opt_wall),
        f"{tv_wall / ours_wall:.2f}",
        f"**{tv_wall / opt_wall:.2f}** ({tv_cpu / opt_cpu:.2f})",
        f"{peaks['torchvision']:.0f}",
        f"{peaks['ours']:.0f}",
        f"{peaks['ours_optimized']:.0f}",
        unit,
    ]


def _dtype_name(dtype: torch.dtype | None) -> str:
    return "float32 (no native bf16 on this CPU)" if dtype is None else str(dtype).replace("torch.", "")


def _markdown(rows, checks, *, device, threads, reps, warmup, quick, min_seconds=0.0, peak, n) -> str:
    header = [
        "case", "run", "torchvision", "ours", "ours, optimized", "ratio ours / tv",
        "ratio optimized / tv (CPU time)", "peak MB tv", "peak MB ours", "peak MB optimized",
        *BOUND_COLUMNS, "unit",
    ]  # fmt: skip
    lines = ["## Detector: ours vs torchvision FasterRCNN", ""] + markdown_table(header, rows)
    command = command_line("detector", device=device, quick=quick, threads=threads, reps=None)
    lines += measured_on(device, threads, command)
    lines += [
        "- Throughputs are medians of "
        f"{reps} repetitions per model"
        + (
            f" or more, until each model has {min_seconds:g} s of timed calls (at most 200)"
            if min_seconds
            else ""
        )
        + f", after {warmup} warm-up, the models alternating repetition by "
        "repetition (order flipped each time) in one process; ratios are of those medians (higher: ours "
        "faster), and in parentheses the same ratio of process CPU time, which other processes' load "
        "disturbs less.",
        "- torchvision: `torchvision.models.detection.FasterRCNN` built by "
        "`tools.benchmarks.torchvision_pair` around our model (same trunk and region head modules, copied "
        "RPN head and predictor, same anchors, top-n, thresholds and pooler settings with torchvision's "
        "own RoI op, no resizing); "
        "`model.rpn.min_size=0` on both. Random seeded weights, objectness and class scores rescaled "
        "to a trained model's spread (`calibrate`).",
        "- ours: the model as built. ours, optimized: for inference, a copy after "
        "`optimize_for_inference()` (batch norm folded into the convolutions, channels-last); for "
        "training, a copy with channels-last weights and activations trained under autocast to "
        f"{_dtype_name(training_amp_dtype('ours_optimized', device))}, as `solver.channels_last: true` and "
        "`solver.amp: true` train it (torchvision and ours train in float32; torchvision's model could "
        "be put under autocast too: this row measures what our trainer does, not a faster kernel).",
        "- Peak memory: "
        + (
            "`torch.cuda.max_memory_allocated` over the runs, minus the memory allocated before them."
            if device.startswith("cuda")
            else "a fresh process per model and row builds the model, runs it once (one-time set-up: "
            f"kernel loading, caches), then {1 if quick else 2} time(s); the figure is its peak resident set "
            "during those runs "
            "(`VmHWM`, reset just before them) minus the resident set before them "
            "(the weights are not counted; the working memory of the forward / backward pass is)."
        ),
        f"- FLOP-bound limit: the matmul peak of this run is **{peak / 1e9:.2f} GMAC/s** (median time of "
        f"`torch.mm` of two random {n}x{n} float32 matrices, {n}^3 multiply-adds per call, at the same "
        "thread count, measured before and after the cases, the higher kept); GMACs per image from "
        "`rcnn.detectors.summary.summarize_detector` at the case's size (padded as the model pads it) on "
        "the RoIs per image our region head ran on in the compared call (`post_nms_top_n_test` unless fewer "
        "proposals survive NMS; convolutions and matrix products only), the same for torchvision's model "
        "(same layers, same proposals); FLOP-bound images/s = peak / MACs per image; fraction = measured "
        "images/s / FLOP-bound images/s (inference rows only).",
        "- Training: forward, backward and an SGD step (momentum) per iteration, random boxes; the two "
        "models sample different anchors and RoIs, so only the speed is comparable.",
        "- Detections of the timed inputs, ours against torchvision's (count, labels, max |difference| "
        "of boxes and scores):",
    ]
    lines += [f"  - {c}" for c in checks]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    section_main(__doc__, run_section, argv, quick_help="one tiny case, few repetitions")


if __name__ == "__main__":
    main()
