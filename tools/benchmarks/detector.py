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
of as many repetitions as make :data:`MIN_SECONDS` of timed calls per model). Peak memory on the CPU is
measured in a fresh process per model and case after one untimed call (the peak resident set during the
runs, ``VmHWM`` reset just before them, minus the resident set before them); on CUDA it is
``torch.cuda.max_memory_allocated``.

    python -m tools.benchmarks.detector [--quick] [--device cuda] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring, sync
from tools.benchmarks.torchvision_pair import build_pair, torchvision_faster_rcnn

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "faster_rcnn"
MODELS = ("torchvision", "ours", "ours_optimized")
MIN_SECONDS = 10.0  # timed seconds per model and row at least (full size): many repetitions of fast rows


@dataclass(frozen=True)
class Case:
    """One row group of the table: a config at one image size."""

    name: str
    config: str  # file name under configs/faster_rcnn
    num_classes: int
    height: int
    width: int
    infer_batches: tuple[int, ...]
    train_batch: int


FULL_CASES = (
    Case("ResNet-50 C4, 600x1000", "resnet50_c4.yaml", 80, 600, 1000, (1, 4), 2),
    Case("synthetic ResNet-18/16, 256x256", "synthetic_resnet18.yaml", 9, 256, 256, (1, 4), 2),
)
QUICK_CASES = (Case("synthetic ResNet-18/16, 128x128", "synthetic_resnet18.yaml", 9, 128, 128, (1, 2), 2),)


# ----------------------------------------------------------------------------------------------- the models


def load_model_config(case: Case):
    from rcnn.config import load_config
    from rcnn.config_schema import DetectionConfig

    return load_config(CONFIGS / case.config, DetectionConfig, ["model.rpn.min_size=0"]).model


@torch.no_grad()
def calibrate(
    model: nn.Module, image: Tensor, *, objectness_std: float = 2.0, score_std: float = 3.0
) -> None:
    """Redraw the RPN objectness / deltas and the class-score / box-delta layers of our ``model`` so that,
    on ``image``, the logits spread by about ``objectness_std`` / ``score_std`` and the deltas by ~0.1.

    A fresh initialisation gives near-constant scores (no detection passes the score threshold) or, on
    the activations of a deep trunk without trained batch norm, saturated ones (ties everywhere).
    """
    rpn_head, predictor = model.proposal_generator.head, model.roi_heads.predictor
    seen: dict[str, Tensor] = {}
    hooks = [
        rpn_head.cls_logits.register_forward_pre_hook(lambda m, a: seen.__setitem__("rpn", a[0])),
        predictor.register_forward_pre_hook(lambda m, a: seen.__setitem__("roi", a[0])),
    ]
    was_training = model.training
    try:
        model.eval()
        model([image])
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    gen = torch.Generator().manual_seed(0)
    rpn_norm = seen["rpn"].norm(dim=1).median().clamp(min=1e-6)  # per position, over channels
    roi_norm = seen["roi"].flatten(1).norm(dim=1).median().clamp(min=1e-6)  # per RoI
    for layer, std in (
        (rpn_head.cls_logits, objectness_std / rpn_norm),
        (rpn_head.bbox_pred, 0.1 / rpn_norm),
        (predictor.cls_score, score_std / roi_norm),
        (predictor.bbox_pred, 0.1 / roi_norm),
    ):
        weight = torch.randn(layer.weight.shape, generator=gen) * float(std)
        layer.weight.copy_(weight.to(layer.weight))


def build_models(case: Case, *, training: bool, device: str, which: tuple[str, ...] = MODELS) -> dict:
    """The models of ``which`` for ``case``, identical in every process (seeded)."""
    ours, _ = build_pair(load_model_config(case), case.num_classes, seed=0)
    if not training:
        gen = torch.Generator().manual_seed(1)
        calibrate(ours, torch.rand(3, min(case.height, 256), min(case.width, 256), generator=gen) * 255)
    ours = ours.to(device)
    models: dict[str, nn.Module] = {}
    if training:
        ours.proposal_generator.ignore_cross_boundary = False  # as torchvision's RPN (see build_pair)
        ours.train()
        if "torchvision" in which:
            models["torchvision"] = torchvision_faster_rcnn(copy.deepcopy(ours))  # its own weights to train
        if "ours_optimized" in which:
            models["ours_optimized"] = copy.deepcopy(ours).use_channels_last()
    else:
        ours.eval()
        if "torchvision" in which:
            models["torchvision"] = torchvision_faster_rcnn(ours)  # shares the trunk and the region head
        if "ours_optimized" in which:
            models["ours_optimized"] = copy.deepcopy(ours).optimize_for_inference()
    if "ours" in which:
        models["ours"] = ours
    return {name: models[name] for name in which}


def make_inputs(case: Case, batch: int, device: str, seed: int = 0) -> tuple[list[Tensor], list[dict]]:
    """``batch`` random RGB images of the case's size and 3-6 random boxes on each."""
    gen = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(batch):
        images.append((torch.rand(3, case.height, case.width, generator=gen) * 255).to(device))
        n = int(torch.randint(3, 7, (), generator=gen))
        wh = torch.rand(n, 2, generator=gen) * 0.4 + 0.1  # 10-50% of the side
        xy = torch.rand(n, 2, generator=gen) * (1 - wh)
        scale = torch.tensor([case.width, case.height], dtype=torch.float32)
        boxes = torch.cat([xy * scale, (xy + wh) * scale], dim=1)
        labels = torch.randint(1, case.num_classes + 1, (n,), generator=gen)
        targets.append({"boxes": boxes.to(device), "labels": labels.to(device)})
    return images, targets


def make_step(
    model: nn.Module, images: list[Tensor], targets: list[dict], amp_dtype: torch.dtype | None = None
) -> Callable[[], None]:
    """One training iteration: forward (under autocast to ``amp_dtype`` when given, as the trainer's
    ``solver.amp``), backward, SGD step with momentum."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=1e-5, momentum=0.9, weight_decay=1e-4)
    device_type = images[0].device.type

    def step() -> None:
        with torch.autocast(device_type, dtype=amp_dtype, enabled=amp_dtype is not None):
            losses = model(images, targets)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()

    return step


def training_amp_dtype(model_name: str, device: str) -> torch.dtype | None:
    """The autocast dtype of a model's training step: the optimized model trains as ``solver.amp: true``
    does (bf16 on a CPU with native bf16, fp16 on CUDA; fp32 where the CPU has no native bf16)."""
    if model_name != "ours_optimized":
        return None
    import warnings

    from rcnn.utils.comm import resolve_amp_dtype

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the table says which dtype ran
        return resolve_amp_dtype(True, torch.device(device), None)


def make_inference(model: nn.Module, images: list[Tensor]) -> Callable[[], list[dict]]:
    def infer() -> list[dict]:
        with torch.inference_mode():
            return model(images)

    return infer


# ------------------------------------------------------------------------------------------------ measuring


def time_interleaved(
    runs: dict[str, Callable[[], object]],
    *,
    warmup: int,
    reps: int,
    device: str,
    min_seconds: float = 0.0,
    max_reps: int = 200,
) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per call of each run, alternating the runs (order flipped every
    repetition) after ``warmup`` calls of each: ``reps`` repetitions, more (up to ``max_reps``) until every
    run has been timed for ``min_seconds`` in all, so that fast cases get medians of many calls."""
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    rep = 0
    while rep < reps or (rep < max_reps and min(sum(wall[n]) for n in names) < min_seconds):
        for name in names if rep % 2 == 0 else names[::-1]:
            sync(device)
            w0, c0 = time.perf_counter(), time.process_time()
            runs[name]()
            sync(device)
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
        rep += 1
    return {n: (statistics.median(wall[n]), statistics.median(cpu[n])) for n in names}


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


def peak_memory_mb(spec: dict, device: str) -> float:
    """Peak memory (MB) that running ``spec`` adds: a fresh process on the CPU, the allocator's peak on
    CUDA."""
    if device.startswith("cuda"):
        return _measure_peak(spec)
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]), MKL_NUM_THREADS=str(spec["threads"]))
    out = subprocess.run(
        [sys.executable, "-m", "tools.benchmarks.detector", "--peak-child", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"peak memory process for {spec['model']} failed:\n{out.stderr[-2000:]}")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"])


def _status_mb(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process from /proc/self/status, in MB."""
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux: ``clear_refs`` 5); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="utf-8") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _measure_peak(spec: dict) -> float:
    """Build one model of ``spec``, run it ``spec["runs"]`` times, return the added peak in MB."""
    device = spec["device"]
    case = Case(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["case"].items()})
    training = spec["mode"] == "train"
    torch.set_num_threads(spec["threads"])
    model = build_models(case, training=training, device=device, which=(spec["model"],))[spec["model"]]
    images, targets = make_inputs(case, spec["batch"], device)
    if training:
        run = make_step(model, images, targets, training_amp_dtype(spec["model"], device))
    else:
        run = make_inference(model, images)
    run()  # one call first: one-time set-up (kernel compilation and loading, oneDNN caches) is not counted
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        for _ in range(spec["runs"]):
            run()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    if not _reset_peak_rss():  # ru_maxrss alone would report the peak of building the model
        raise RuntimeError("peak memory on the CPU needs Linux's /proc/self/clear_refs")
    before = _status_mb("VmRSS")
    for _ in range(spec["runs"]):
        run()
    return _status_mb("VmHWM") - before


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
    with measuring(device, threads):
        for case in cases:
            models = build_models(case, training=False, device=device)
            for batch in case.infer_batches:
                images, _ = make_inputs(case, batch, device)
                runs = {name: make_inference(m, images) for name, m in models.items()}
                outputs = {name: run() for name, run in runs.items()}
                _check_device(outputs, device)
                times = time_interleaved(
                    runs, warmup=warmup, reps=reps, device=device, min_seconds=min_seconds
                )
                peaks = {n: _peak(case, n, "infer", batch, device, threads, quick) for n in models}
                rows.append(_row(case, f"inference, batch {batch}", batch, times, peaks, "images/s"))
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
            del models
    return _markdown(
        rows, checks, device=device, threads=threads, reps=reps, warmup=warmup, quick=quick,
        min_seconds=min_seconds,
    )  # fmt: skip


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


def _markdown(rows, checks, *, device, threads, reps, warmup, quick, min_seconds=0.0) -> str:
    header = [
        "case", "run", "torchvision", "ours", "ours, optimized", "ratio ours / tv",
        "ratio optimized / tv (CPU time)", "peak MB tv", "peak MB ours", "peak MB optimized", "unit",
    ]  # fmt: skip
    lines = ["## Detector: ours vs torchvision FasterRCNN", ""] + markdown_table(header, rows)
    command = command_line("tools.benchmarks.detector", device=device, quick=quick, threads=threads, reps=None)
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
        "- Training: forward, backward and an SGD step (momentum) per iteration, random boxes; the two "
        "models sample different anchors and RoIs, so only the speed is comparable.",
        "- Detections of the timed inputs, ours against torchvision's (count, labels, max |difference| "
        "of boxes and scores):",
    ]
    lines += [f"  - {c}" for c in checks]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one tiny case, few repetitions")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--peak-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak_child:
        print(json.dumps({"peak_mb": _measure_peak(json.loads(args.peak_child))}))
        return
    print(run_section(device=args.device, quick=args.quick, threads=args.threads, reps=args.reps))


if __name__ == "__main__":
    main()
