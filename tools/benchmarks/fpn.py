"""FPN benchmark: rcnn's R50-FPN against torchvision's own ``fasterrcnn_resnet50_fpn`` on identical weights,
and against rcnn's R50-C4, with each model's fraction of the FLOP-bound limit.

:func:`run_section` returns a markdown section for ``docs/benchmarks.md`` with two tables.

**R50-FPN, rcnn against torchvision**: inference images/s at batch 1 and 4 and training iterations/s at
batch 2, with peak memory, at

* 600x1000 (COCO-like images; padded to 640x1024) and
* 256x256 (the synthetic data's size; R50-FPN of ``configs/faster_rcnn/resnet50_fpn.yaml`` at that size,
  not the synthetic FPN config's small ResNet-18, which torchvision's model cannot be).

torchvision's model is ``torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None,
weights_backbone=None, num_classes=91)``, rcnn's is ``configs/faster_rcnn/resnet50_fpn.yaml`` (90 classes)
loaded with torchvision's converted state_dict (:mod:`tools.benchmarks.fpn_models`: random weights,
frozen batch norm as torchvision's pretrained recipe, scores calibrated to a trained model's spread,
images normalised alike and never resized, both padded to a multiple of 64). The detections of the timed
inputs are compared (count, labels, max |difference| of boxes and scores).

**R50-C4 against R50-FPN in rcnn**: inference images/s at 600x1000, batch 1, of
``configs/faster_rcnn/resnet50_c4.yaml`` (300 RoIs, res5 head) and the R50-FPN above (1000 RoIs, two-fc
head), timed in the same interleaved call as the FPN pair's batch-1 row.

Every inference row gives the multiply-adds per image (:func:`rcnn.detectors.summary.summarize_detector` at
the padded size, on the RoIs per image that rcnn's region head ran on in the compared call: the test-time
``post_nms_top_n`` unless fewer proposals survive NMS; the same layers and proposals for torchvision's
model), the FLOP-bound images/s
(the matmul peak over them) and each model's fraction of it (measured images/s over the bound). The peak is
measured in the same run (:mod:`tools.benchmarks.flop_bound`: a float32 2048x2048 ``torch.mm``, 512 with
``--quick``, at the run's thread count, before and after the cases; the higher of the two medians).

Timings alternate the models repetition by repetition (order flipped each time) after one untimed call
(for inference, the one whose detections are compared), and are
medians (of as many repetitions as make :data:`MIN_SECONDS` of timed calls per model, at least ``reps``).
Peak memory is :mod:`tools.benchmarks.peak_memory` (on the CPU, a fresh process per model and row).
Training: forward, backward and an SGD step (momentum), random boxes, both in float32; the two sample
different anchors and RoIs, so only the speed is comparable.

    python tools/benchmark.py --sections fpn [--quick] [--device cuda] [--threads 1] [--reps N]

writes it into ``docs/benchmarks.md`` (``--output FILE`` elsewhere); from the repository root,
``python -m tools.benchmarks.fpn`` takes the same options and prints the markdown. ``--quick``: one 64x128
case with small top-n (200 / 100 proposals, 64 sampled RoIs), batch 1 and 2, training at batch 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict

from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring, section_main
from tools.benchmarks.detector import compare_detections
from tools.benchmarks.flop_bound import (
    FULL_MATMUL_N,
    QUICK_MATMUL_N,
    RoICounter,
    bound_images_per_second,
    detector_macs,
    measure_peak,
)
from tools.benchmarks.fpn_models import (
    C4_CONFIG,
    FULL_CASES,
    QUICK_CASES,
    SIZE_DIVISIBLE,
    Case,
    build_models,
    make_inference,
    make_inputs,
    make_step,
    model_config,
)
from tools.benchmarks.peak_memory import peak_memory_mb
from tools.benchmarks.timing import time_interleaved

MIN_SECONDS = 10.0  # timed seconds per model and row at least (full size)
PAIR = ("torchvision", "ours")
TITLE = "## FPN: R50-FPN against torchvision's fasterrcnn_resnet50_fpn, and against R50-C4"
PAIR_HEADER = [
    "case", "run", "torchvision", "ours", "ratio ours / tv (CPU time)", "peak MB tv", "peak MB ours",
    "RoIs per image", "GMACs per image", "FLOP-bound images/s", "fraction tv", "fraction ours", "unit",
]  # fmt: skip
C4_HEADER = [
    "model", "input", "run", "images/s", "RoIs per image", "GMACs per image", "FLOP-bound images/s",
    "fraction",
]  # fmt: skip


def run_section(
    *, device: str = "cpu", quick: bool = False, threads: int = 1, reps: int | None = None
) -> str:
    """The markdown section :data:`TITLE` (see the module docstring).

    device: "cpu" or "cuda[:i]"; quick: one tiny case (seconds); threads: intra-op CPU threads (1 by
    default); reps: timed repetitions at least (default 3, quick 1).
    """
    cases = QUICK_CASES if quick else FULL_CASES
    reps = reps or (1 if quick else 3)
    min_seconds = 0.0 if quick else MIN_SECONDS
    n = QUICK_MATMUL_N if quick else FULL_MATMUL_N
    rows, c4_rows, checks = [], [], []
    bounds = []  # (row, C4 table?, RoIs per image, MACs per image, {model: images/s}): done with the peak
    with measuring(device, threads):
        peak = measure_peak(n, device, reps=max(reps, 5))
        for index, case in enumerate(cases):
            size = (case.height, case.width)
            configs = {"ours": model_config(case), "ours_c4": model_config(case, C4_CONFIG)}
            divisible = {"ours": SIZE_DIVISIBLE, "ours_c4": None}  # C4: its own padding (16)
            with_c4 = index == 0  # R50-C4 against R50-FPN at the first case's size, batch 1
            which = PAIR + ("ours_c4",) if with_c4 else PAIR
            models = build_models(case, training=False, device=device, which=which)
            for batch in case.infer_batches:
                images, _ = make_inputs(case, batch, device)
                names = which if batch == 1 else PAIR
                runs = {name: make_inference(models[name], images) for name in names}
                outputs, rois = {}, {}
                for name, run in runs.items():  # the untimed first call: detections and RoIs counted
                    with RoICounter(models[name]) as counter:
                        outputs[name] = run()
                    rois[name] = round(counter.rois / batch)
                macs = {
                    name: detector_macs(
                        configs[name], case.num_classes, size, num_rois=rois[name],
                        size_divisibility=divisible[name],
                    )
                    for name in names if name != "torchvision"
                }  # fmt: skip
                times = time_interleaved(runs, warmup=0, reps=reps, device=device, min_seconds=min_seconds)
                ips = {name: batch / times[name][0] for name in names}
                peaks = {m: _peak(case, m, "infer", batch, device, threads, quick) for m in PAIR}
                rows.append(_row(case, f"inference, batch {batch}", batch, times, peaks, "images/s"))
                bounds.append((rows[-1], False, rois["ours"], macs["ours"], {m: ips[m] for m in PAIR}))
                same = compare_detections(outputs["ours"], outputs["torchvision"])
                checks.append(f"{case.name}, batch {batch}: {same}")
                if "ours_c4" in runs:
                    for name, what in (("ours_c4", "R50-C4"), ("ours", "R50-FPN")):
                        c4_rows.append([what, f"{case.height}x{case.width}", f"inference, batch {batch}"])
                        bounds.append((c4_rows[-1], True, rois[name], macs[name], {name: ips[name]}))
            del models
            models = build_models(case, training=True, device=device)
            images, targets = make_inputs(case, case.train_batch, device)
            runs = {name: make_step(model, images, targets) for name, model in models.items()}
            times = time_interleaved(runs, warmup=1, reps=reps, device=device, min_seconds=min_seconds)
            peaks = {m: _peak(case, m, "train", case.train_batch, device, threads, quick) for m in models}
            rows.append(_row(case, f"training, batch {case.train_batch}", 1, times, peaks, "iterations/s"))
            rows[-1][-1:-1] = ["-"] * 5  # the bound is of inference (forward) multiply-adds
            del models
        peak = max(peak, measure_peak(n, device, reps=max(reps, 5)))  # the higher: less disturbed by load
    for row, c4_table, rois, macs, images_per_s in bounds:
        bound = bound_images_per_second(peak, macs)
        cells = [str(rois), f"{macs / 1e9:.3f}", f"{bound:.2f}"]
        cells += [f"{v / bound:.3g}" for v in images_per_s.values()]
        if c4_table:  # images/s first
            row += [f"{next(iter(images_per_s.values())):.2f}", *cells]
        else:
            row[-1:-1] = cells
    return _markdown(
        rows, c4_rows, checks, device=device, threads=threads, reps=reps, quick=quick,
        min_seconds=min_seconds, peak=peak, n=n, rois=_test_rois(cases[0]),
    )  # fmt: skip


def _test_rois(case: Case) -> dict[str, int]:
    """The test-time RoIs of the FPN and C4 configs with the case's settings."""
    return {
        "fpn": model_config(case).rpn.post_nms_top_n_test,
        "c4": model_config(case, C4_CONFIG).rpn.post_nms_top_n_test,
    }


def _peak(case: Case, model: str, mode: str, batch: int, device: str, threads: int, quick: bool) -> float:
    spec = {
        "models": "tools.benchmarks.fpn_models",
        "case": asdict(case),
        "model": model,
        "mode": mode,
        "batch": batch,
        "device": device,
        "threads": threads,
        "runs": 1 if quick else 2,
    }
    return peak_memory_mb(spec, device)


def _ips(batch: int, seconds: float) -> str:
    return f"{batch / seconds:.2f}" if seconds < math.inf else "-"


def _row(case: Case, what: str, per_call: int, times: dict, peaks: dict, unit: str) -> list[str]:
    (tv_wall, tv_cpu), (ours_wall, ours_cpu) = times["torchvision"], times["ours"]
    return [
        case.name,
        what,
        _ips(per_call, tv_wall),
        _ips(per_call, ours_wall),
        f"**{tv_wall / ours_wall:.2f}** ({tv_cpu / ours_cpu:.2f})",
        f"{peaks['torchvision']:.0f}",
        f"{peaks['ours']:.0f}",
        unit,
    ]


def _markdown(rows, c4_rows, checks, *, device, threads, reps, quick, min_seconds, peak, n, rois) -> str:
    lines = [TITLE, ""] + markdown_table(PAIR_HEADER, rows)
    lines += ["", "R50-C4 against R50-FPN in rcnn (timed in the same call as the pair's batch-1 row):", ""]
    lines += markdown_table(C4_HEADER, c4_rows)
    command = command_line("fpn", device=device, quick=quick, threads=threads, reps=None)
    lines += measured_on(device, threads, command)
    lines += [
        f"- Throughputs are medians of {reps} repetitions per model"
        + (
            f" or more, until each model has {min_seconds:g} s of timed calls (at most 200)"
            if min_seconds
            else ""
        )
        + ", after one untimed call (for inference, the one whose detections are compared), the models "
        "alternating repetition by repetition (order flipped each time) in one process; the ratio is of "
        "those medians (higher: ours faster), in parentheses the same ratio of process CPU time.",
        "- torchvision: `fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)` with "
        "`FrozenBatchNorm2d` and the stem and layer1 frozen (its pretrained recipe, "
        "`trainable_backbone_layers=3`), random seeded weights, batch-norm statistics away from the "
        "identity; ours: `configs/faster_rcnn/resnet50_fpn.yaml` (90 classes) loaded with its converted "
        "state_dict (`rcnn.detectors.torchvision_weights`). The RPN objectness / deltas and class-score / "
        "box-delta layers are rescaled to a trained model's spread (`calibrate`) and shared. No resizing "
        "(torchvision's transform normalises with the same mean / std); both pad to a multiple of "
        f"{SIZE_DIVISIBLE} (torchvision's P6 anchor stride is 64 only then)."
        + (" Quick: 200 / 100 RPN proposals before / after NMS, 64 sampled RoIs, on both." if quick else ""),
        f"- FLOP-bound limit: the matmul peak of this run is **{peak / 1e9:.2f} GMAC/s** (median time of "
        f"`torch.mm` of two random {n}x{n} float32 matrices at the same thread count, measured before and "
        "after the cases, the higher kept); GMACs per image from `rcnn.detectors.summary.summarize_detector` "
        "at the padded size on the RoIs per image that rcnn's region head ran on in the compared call (at "
        f"most `post_nms_top_n_test`: FPN {rois['fpn']}, C4 {rois['c4']}; fewer when fewer proposals survive "
        "NMS); convolutions and matrix products only; torchvision's model runs the same layers on the same "
        "proposals; FLOP-bound images/s = peak / MACs per image; fraction = measured images/s / FLOP-bound "
        "images/s (inference rows only).",
        "- R50-C4: `configs/faster_rcnn/resnet50_c4.yaml` (90 classes, random calibrated weights, padded "
        "to 16 as it pads).",
        "- Peak memory: "
        + (
            "`torch.cuda.max_memory_allocated` over the runs, minus the memory allocated before them."
            if device.startswith("cuda")
            else "a fresh process per model and row runs it once, then "
            f"{1 if quick else 2} time(s); the figure is its peak resident set during those runs (`VmHWM`, "
            "reset just before them) minus the resident set before them."
        ),
        "- Training: forward, backward and an SGD step (momentum) per iteration, random boxes, float32; "
        "the two sample different anchors and RoIs, so only the speed is comparable.",
        "- Detections of the timed inputs, ours against torchvision's (count per image, labels, max "
        "|difference| of boxes and scores):",
    ]
    lines += [f"  - {c}" for c in checks]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    section_main(__doc__, run_section, argv, quick_help="one 64x128 case, small top-n")


if __name__ == "__main__":
    main()
