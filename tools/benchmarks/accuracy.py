"""Accuracy at the same budget: rcnn's FPN Faster R-CNN against torchvision's ``FasterRCNN`` on the same
trunk, initial weights, data, iterations and schedule, on two detection sets the defaults were not tuned on.

:func:`run_section` returns a markdown section for ``docs/benchmarks.md``. For each set of
:mod:`tools.benchmarks.photo_sets` (photo objects on textures; photo shapes on photos: made from
scikit-image's bundled photos in a temporary folder, seed 0) and each seed:

1. rcnn's detector of ``configs/faster_rcnn/synthetic_resnet18_fpn.yaml`` is built once, in this process,
   from the seed (``solver.seed``) and the backbone checkpoint (``model.backbone.weights``), and saved as a
   detector checkpoint ``init.pth``: the initial weights of both models;
2. **rcnn** trains through ``tools/train_detector.py`` (a subprocess, the config with the data paths,
   ``model.backbone.weights``, ``model.weights=init.pth``, ``solver.seed`` and ``solver.device`` set),
   which ends with its COCO evaluation of the val split (``metrics.json``);
3. **torchvision**: :func:`tools.benchmarks.torchvision_fpn.torchvision_fpn_faster_rcnn` composes
   torchvision's ``FasterRCNN`` from torchvision's parts around a copy of that model's trunk + FPN, with
   its head weights copied; :func:`tools.benchmarks.torchvision_training.train_torchvision` trains it with
   rcnn's data loader, optimizer settings, schedule and precision for the same iterations, and
   :func:`tools.benchmarks.torchvision_training.evaluate_torchvision` evaluates it with the same evaluator.

Both run with ``threads`` intra-op threads (the subprocess through ``OMP_NUM_THREADS``). Precision: both
train in float32 (``solver.amp=false``). Under CPU bf16 autocast torchvision's Faster R-CNN decodes its
proposals in bf16 and casts the ground-truth boxes to their dtype for RoI sampling and box targets
(coordinates rounded to steps of 0.5 px from 64 px on, 1 px from 128 px on), where rcnn decodes and computes
its losses in float32: a handicap of torchvision's code under bf16, not of its design, which float32 leaves
out. ``amp=True`` (``RCNN_ACCURACY_AMP=1``) keeps the config's ``solver.amp: true`` for both instead
(bf16 autocast on a CPU with native bf16, fp16 on CUDA), torchvision's loop under the same autocast.
Evaluation runs in float32 for both.

Backbone weights: ``backbone_weights``, else the environment variable ``RCNN_ACCURACY_WEIGHTS``: the main
job's classifier checkpoint, e.g. ``outputs/quickstart/classifier/model_final.pth``. The full run needs
it; ``quick`` without it starts both from the seeded random initialisation.

    RCNN_ACCURACY_WEIGHTS=outputs/quickstart/classifier/model_final.pth \\
        python tools/benchmark.py --sections accuracy --write-docs
    python tools/benchmark.py --sections accuracy --quick          # a smoke run: tiny sets, 20 iterations

From the repository root, ``python -m tools.benchmarks.accuracy [--quick] [--weights PATH] [--seeds 0 1]
[--amp]`` prints the markdown. Full size: 1200 train and 200 val images of 256x256 per set, the
config's schedule (2800 iterations of 4 images). ``--quick``: 16 train and 8 val images of 128x128, 20
iterations (anchors 16-128 for the smaller images), no data workers. ``reps`` is not used (one training per
model, set and seed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rcnn.config import ConfigError, load_config
from rcnn.config_schema import DetectionConfig
from rcnn.detectors.build import build_detector
from rcnn.engine.logging import read_metrics
from rcnn.tasks.detection import build_detection_dataset, detector_metadata, save_detector
from rcnn.utils.comm import resolve_amp_dtype, select_device
from rcnn.utils.rng import seed_all
from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring
from tools.benchmarks.photo_sets import PHOTO_SETS, PhotoSet, write_photo_set
from tools.benchmarks.steps import Steps
from tools.benchmarks.torchvision_fpn import remaining_differences, torchvision_fpn_faster_rcnn
from tools.benchmarks.torchvision_training import evaluate_torchvision, train_torchvision
from tools.quickstart import ROOT

CONFIG = "configs/faster_rcnn/synthetic_resnet18_fpn.yaml"
WEIGHTS_ENV = "RCNN_ACCURACY_WEIGHTS"
AMP_ENV = "RCNN_ACCURACY_AMP"
TITLE = "## Accuracy at the same budget: rcnn's FPN Faster R-CNN against torchvision's FasterRCNN"
FULL = {"num_train": 1200, "num_val": 200, "image_size": 256}
QUICK = {"num_train": 16, "num_val": 8, "image_size": 128}
QUICK_OVERRIDES = [
    "data.min_size=[128]", "data.max_size=128", "test.min_size=128", "test.max_size=128",
    "data.num_workers=0", "model.rpn.anchor_sizes=[16,32,64,128]", "solver.max_iter=20", "solver.steps=[15]",
    "solver.warmup_iters=5", "solver.checkpoint_period=20", "solver.log_period=5",
]  # fmt: skip
METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
MODELS = ("rcnn", "torchvision")
HEADER = ["set", "model", "seed", *METRICS, "training s", "total s"]
SET_HEADER = [
    "set", "categories (id: name)", "train / val images", "image size", "objects per train image",
    "box sides, px (train: median, min-max)", "generation s",
]  # fmt: skip


@dataclass
class Result:
    """One trained model: its COCO metrics, the seconds of its training loop and of the whole run."""

    metrics: dict[str, Any]
    train_seconds: float
    total_seconds: float


@dataclass
class SetRuns:
    """The runs of one set: its data summary, per seed each model's :class:`Result`, what torchvision's
    model does otherwise (:func:`remaining_differences`) and the autocast dtype of both trainings."""

    photo_set: PhotoSet
    summary: list[str]
    results: dict[int, dict[str, Result]]
    differences: list[str]
    amp_dtype: torch.dtype | None


def run_section(
    *,
    device: str = "cpu",
    quick: bool = False,
    threads: int = 1,
    reps: int | None = None,
    backbone_weights: str | None = None,
    seeds: Sequence[int] = (0,),
    amp: bool | None = None,
) -> str:
    """The markdown section :data:`TITLE` (see the module docstring).

    device: where both models train and run (``solver.device``); quick: tiny sets and 20 iterations;
    threads: intra-op CPU threads of both; reps: unused; backbone_weights: the classifier checkpoint (else
    ``RCNN_ACCURACY_WEIGHTS``; required unless quick); seeds: ``solver.seed`` values, one pair of runs
    each; amp: train both under the config's autocast (None: ``RCNN_ACCURACY_AMP=1``; else float32).
    """
    weights = backbone_weights or os.environ.get(WEIGHTS_ENV) or None
    if amp is None:
        amp = os.environ.get(AMP_ENV, "").strip().lower() in ("1", "true", "yes")
    if not quick and not weights:
        raise ConfigError(
            f"the accuracy section needs the backbone's classifier checkpoint for the full run: set "
            f"{WEIGHTS_ENV}=PATH (the main job's, e.g. outputs/quickstart/classifier/model_final.pth)"
        )
    if weights and not os.path.isfile(weights):
        raise FileNotFoundError(f"{WEIGHTS_ENV}: classifier checkpoint not found: {weights}")
    weights = os.path.abspath(weights) if weights else None
    with measuring(device, threads), tempfile.TemporaryDirectory(prefix="accuracy_") as work:
        steps = Steps({work: "WORK", **({weights: "CLASSIFIER"} if weights else {})})
        runs = [
            _run_set(photo_set, os.path.join(work, photo_set.key), steps, seeds=seeds, weights=weights,
                     device=device, quick=quick, threads=threads, amp=amp)
            for photo_set in PHOTO_SETS
        ]  # fmt: skip
    return _markdown(runs, steps, device=device, quick=quick, threads=threads, weights=weights, amp=amp)


def _data_overrides(paths: dict[str, str]) -> list[str]:
    return [f"data.{key}={value}" for key, value in paths.items()]


def _overrides(data_dir: str, seed: int, weights: str | None, device: str, quick: bool, amp: bool):
    paths = {
        "train_images": os.path.join(data_dir, "train"),
        "train_annotations": os.path.join(data_dir, "train.json"),
        "val_images": os.path.join(data_dir, "val"),
        "val_annotations": os.path.join(data_dir, "val.json"),
    }
    overrides = [*_data_overrides(paths), f"solver.seed={seed}", f"solver.device={device}"]
    overrides += [f"model.backbone.weights={weights}"] if weights else []
    overrides += [] if amp else ["solver.amp=false"]
    return overrides + (QUICK_OVERRIDES if quick else [])


def _config(data_dir, seed, weights, device, quick, amp) -> DetectionConfig:
    overrides = _overrides(data_dir, seed, weights, device, quick, amp)
    return load_config(os.path.join(ROOT, CONFIG), DetectionConfig, overrides)


@contextlib.contextmanager
def _child_threads(threads: int) -> Iterator[None]:
    """``OMP_NUM_THREADS=threads`` for the subprocesses started inside the block."""
    previous = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("OMP_NUM_THREADS")
        else:
            os.environ["OMP_NUM_THREADS"] = previous


def _run_set(photo_set: PhotoSet, work: str, steps: Steps, *, seeds, weights, device, quick, threads, amp):
    sizes = QUICK if quick else FULL
    data_dir = os.path.join(work, "data")
    print(f"\n== {photo_set.title}: writing {sizes} to {data_dir}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    write_photo_set(photo_set, data_dir, seed=0, **sizes)
    summary = _summary(photo_set, data_dir, sizes, time.perf_counter() - start)
    results: dict[int, dict[str, Result]] = {}
    for seed in seeds:
        cfg = _config(data_dir, seed, weights, device, quick, amp)
        train_set, val_set = build_detection_dataset(cfg, "train"), build_detection_dataset(cfg, "val")
        seed_all(seed)  # as the tools' prologue before building the model
        model = build_detector(cfg.model, train_set.num_classes)
        run_dir = os.path.join(work, f"seed{seed}")
        init = save_detector(os.path.join(run_dir, "init.pth"), model, detector_metadata(train_set))
        results[seed] = {
            "rcnn": _train_rcnn(photo_set, steps, data_dir, run_dir, init, seed, weights, device, quick,
                                threads, amp),
            "torchvision": _train_torchvision(model, cfg, train_set, val_set, device, run_dir),
        }  # fmt: skip
    amp_dtype = resolve_amp_dtype(cfg.solver.amp, select_device(device), None)  # the trainer's rule
    return SetRuns(photo_set, summary, results, remaining_differences(model), amp_dtype)


def _train_rcnn(photo_set, steps, data_dir, run_dir, init, seed, weights, device, quick, threads, amp):
    out = os.path.join(run_dir, "rcnn")
    overrides = _overrides(data_dir, seed, weights, device, quick, amp)
    args = ["tools/train_detector.py", "--config", CONFIG, "--no-progress", *overrides]
    args += [f"model.weights={init}", f"output.dir={out}"]
    with _child_threads(threads):
        total = steps.run(f"{photo_set.title}, seed {seed}: train rcnn's detector", args)
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    return Result(metrics, loop_seconds(read_metrics(out)), total)


def loop_seconds(records: list[dict[str, Any]]) -> float:
    """Seconds of a training loop from its ``metrics.jsonl`` records: each logged window's mean iteration
    ``time`` times the iterations in that window."""
    seconds, previous = 0.0, 0
    for record in records:
        if "time" in record:
            seconds += record["time"] * (record["iteration"] - previous)
            previous = record["iteration"]
    return seconds


def _train_torchvision(model, cfg, train_set, val_set, device, run_dir) -> Result:
    print("\n== torchvision's FasterRCNN on a copy of the same initial weights", file=sys.stderr, flush=True)
    start = time.perf_counter()
    tv = torchvision_fpn_faster_rcnn(model)
    target = select_device(device)
    train_seconds, _ = train_torchvision(tv, cfg, train_set, target, log_every=10 * cfg.solver.log_period)
    metrics = evaluate_torchvision(tv, cfg, val_set, target, os.path.join(run_dir, "torchvision"))
    return Result(metrics, train_seconds, time.perf_counter() - start)


def _summary(photo_set: PhotoSet, data_dir: str, sizes: dict[str, int], seconds: float) -> list[str]:
    """The cells of the set's row in the data table."""
    with open(os.path.join(data_dir, "train.json"), encoding="utf-8") as f:
        train = json.load(f)
    sides = [max(a["bbox"][2], a["bbox"][3]) for a in train["annotations"]]
    sides += [min(a["bbox"][2], a["bbox"][3]) for a in train["annotations"]]
    per_image = len(train["annotations"]) / max(len(train["images"]), 1)
    categories = ", ".join(f"{cid}: {name}" for cid, name in photo_set.categories)
    size = sizes["image_size"]
    return [
        photo_set.title, categories, f"{sizes['num_train']} / {sizes['num_val']}", f"{size}x{size}",
        f"{per_image:.1f}", f"{statistics.median(sides):.0f}, {min(sides):.0f}-{max(sides):.0f}",
        f"{seconds:.1f}",
    ]  # fmt: skip


def _cell(value: float) -> str:
    return "n/a" if value < 0 else f"{value:.3f}"


def _difference(a: float, b: float) -> str:
    return "n/a" if a < 0 or b < 0 else f"{a - b:+.3f}"


def _rows(runs: list[SetRuns]) -> list[list[str]]:
    rows = []
    for run in runs:
        for seed, results in run.results.items():
            for name in MODELS:
                r = results[name]
                rows.append(
                    [run.photo_set.title, name, str(seed), *(_cell(r.metrics[m]) for m in METRICS),
                     f"{r.train_seconds:.0f}", f"{r.total_seconds:.0f}"]
                )  # fmt: skip
            ours, theirs = results["rcnn"].metrics, results["torchvision"].metrics
            rows.append(
                [run.photo_set.title, "**rcnn - torchvision**", str(seed),
                 *(f"**{_difference(ours[m], theirs[m])}**" for m in METRICS), "", ""]
            )  # fmt: skip
    return rows


def _precision(amp_dtype: torch.dtype | None, amp: bool) -> str:
    if amp_dtype is None:
        if not amp:
            return (
                "both trained in float32 (`solver.amp=false`), both evaluated in float32. Under CPU bf16 "
                "autocast torchvision decodes its proposals in bf16 and casts the ground-truth boxes to "
                "their dtype for RoI sampling and box targets (rcnn decodes and computes its losses in "
                "float32): float32 leaves that handicap out. `RCNN_ACCURACY_AMP=1` trains both under the "
                "config's autocast (`solver.amp: true`) instead."
            )
        return "both trained in float32 (`solver.amp: true`, but no native bf16 here), evaluated in float32."
    name = str(amp_dtype).removeprefix("torch.")
    return (
        f"both trained under {name} autocast (the config's `solver.amp: true`; torchvision's loop uses the "
        f"same autocast); both evaluated in float32. Under {name} autocast torchvision decodes its "
        "proposals in the deltas' dtype and casts the ground-truth boxes to it for RoI sampling and box "
        "targets, where rcnn decodes and computes its losses in float32."
    )


def _markdown(runs: list[SetRuns], steps: Steps, *, device, quick, threads, weights, amp) -> str:
    lines = [TITLE, ""]
    if quick:
        lines += [
            "Quick: tiny sets and 20 iterations, a smoke run of the section (the numbers mean nothing).",
            "",
        ]
    lines += ["Data (made from scikit-image's bundled photos, seed 0; `tools/benchmarks/photo_sets.py`):", ""]
    lines += markdown_table(SET_HEADER, [run.summary for run in runs])
    lines += ["", "COCO evaluation (pycocotools) of the val split, the same evaluator for both:", ""]
    lines += markdown_table(HEADER, _rows(runs))
    command = command_line("accuracy", device=device, quick=quick, threads=threads, reps=None)
    if weights:
        command = f"{WEIGHTS_ENV}=CLASSIFIER {command}"
    if amp:
        command = f"{AMP_ENV}=1 {command}"
    lines += measured_on(device, threads, command)
    start = (
        "the classifier checkpoint CLASSIFIER (`model.backbone.weights`)"
        if weights
        else "the seeded random initialisation (no classifier checkpoint: --quick only)"
    )
    lines += [
        f"- The same for both: `{CONFIG}` (with the data paths, `solver.seed` and `solver.device`"
        + (", and the quick settings" if quick else "")
        + f"); the trunk + FPN and the initial weights: rcnn's detector built once from {start} and the "
        "seed, saved as `init.pth`, which rcnn's run loads (`model.weights`) and torchvision's model copies "
        "(trunk and FPN deep-copied; RPN head, two-fc box head and predictor weights copied into "
        "torchvision's `RPNHead`, `TwoMLPHead` and `FastRCNNPredictor`); the data loader (rcnn's "
        "`build_detection_train_loader`: the same images in the same order, the same transforms, "
        "`solver.ims_per_batch` images a batch); SGD with the config's lr, momentum and weight decay, its "
        "warm-up and steps, the same iterations; the anchor sizes per level and aspect ratios, pre/post-NMS "
        "top-n, NMS thresholds, RPN minimum size, matcher thresholds, sampler sizes, box-coder weights and "
        "clamp, smooth-L1 beta (1/9), score threshold and detections per image; no resizing inside either "
        "model (torchvision's transform normalises with the same mean / std and pads to the same multiple).",
        f"- Precision: {_precision(runs[0].amp_dtype, amp)}",
        "- Differences that remain:",
        *(f"  - {d}" for d in runs[0].differences),
        "  - Memory format: rcnn's run puts its model channels-last (`solver.channels_last`); torchvision's "
        "model is converted with `.to(memory_format=torch.channels_last)` and gets its batch in the "
        "default layout from its transform (the same function; speed only).",
        "- Seconds: `training s` is the training loop (data and steps): for rcnn from its `metrics.jsonl` "
        "(each logged window's mean iteration time times its iterations), for torchvision the sum of its "
        "iterations; `total s` is the whole run: rcnn's `tools/train_detector.py` command (process start, "
        "data check, checkpoints and the final evaluation included), torchvision's model composition, "
        "training and evaluation in this process. Both with "
        f"{threads} intra-op thread(s) (rcnn's subprocess through `OMP_NUM_THREADS`).",
        "- rcnn's runs (WORK: a temporary folder, removed afterwards):",
        *(f"  - `{shown}`" for _, shown, _ in steps.commands),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sets and 20 iterations (a smoke run)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--weights", default=None, help=f"the classifier checkpoint (else ${WEIGHTS_ENV})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="solver.seed values (default: 0)")
    parser.add_argument("--amp", action="store_true", help="train both under the config's autocast")
    args = parser.parse_args(argv)
    print(
        run_section(
            device=args.device, quick=args.quick, threads=args.threads, reps=args.reps,
            backbone_weights=args.weights, seeds=args.seeds, amp=args.amp or None,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
