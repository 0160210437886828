"""The three generations side by side: R-CNN, Fast R-CNN and Faster R-CNN on the built-in synthetic data,
on one backbone (the small ResNet-18 of ``configs/*/synthetic_resnet18.yaml``) and one set of pretrained
classifier weights.

The steps run as the repository's commands, each printed before it runs (as ``tools/quickstart.py`` does),
from the repository root, with every output in a work folder:

1. the synthetic detection and classification sets (``tools/make_synthetic.py``), unless ``data`` names a
   folder of that layout (``detection/{train,val}.json``, ``classification/``);
2. the backbone pretrained as a classifier (``tools/train_classifier.py --config
   configs/classification/synthetic_resnet18.yaml``), unless ``classifier`` names a checkpoint;
3. selective search proposals of the train split, then of the val split (``tools/compute_proposals.py
   --config configs/fast_rcnn/synthetic_resnet18.yaml``; the R-CNN config reads the same folders: its
   proposal parameters are the same);
4. each detector trained from the classifier's weights (``tools/train_detector.py --config
   configs/<generation>/synthetic_resnet18.yaml model.backbone.weights=...``), which evaluates COCO AP on
   the val split at the end (pycocotools; ``metrics.json``);
5. test-time speed, in this process: every val image (batch 1, the test transform, already decoded) through
   each trained detector (:func:`rcnn.tasks.detection.load_detector` on the run's saved ``config.yaml``,
   the call :func:`rcnn.tasks.detection.run_inference` makes), and selective search on the image file
   (:func:`rcnn.proposals.compute.search_image`, what the proposal workers run), after a warm-up, the four
   runs alternating image by image (order flipped every image). Seconds per image are medians over the
   val images; a detector on selective search proposals is charged the search of each image as well.

Training time is the wall clock of the ``tools/train_detector.py`` command (process start and the final
COCO evaluation included; for R-CNN all its stages: fine-tuning, feature cache, SVMs, box regression); the
train split's selective search, which R-CNN and Fast R-CNN need first, is its own column (the wall clock
of that command, with ``proposals.workers`` processes: one per core).

    python tools/benchmark.py --sections generations [--quick] [--data DIR] [--classifier PATH] \
        [--work-dir DIR]

writes it into ``docs/benchmarks.md`` (``--output FILE`` elsewhere); from the repository root,
``python -m tools.benchmarks.generations`` takes the same options and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig
from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring
from tools.benchmarks.inference_speed import WARMUP_IMAGES, measure_test_time
from tools.benchmarks.steps import (
    Steps,
    check_fresh_work_folder,
    check_overrides,
    data_overrides,
    generate_data,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSIFIER_CONFIG = "configs/classification/synthetic_resnet18.yaml"
PROPOSALS_CONFIG = "configs/fast_rcnn/synthetic_resnet18.yaml"


@dataclass(frozen=True)
class Generation:
    """One row of the table: a detector, its config and whether it runs on selective search proposals."""

    name: str
    key: str  # model.type, the config folder and the run's folder
    selective_search: bool

    @property
    def config(self) -> str:
        return f"configs/{self.key}/synthetic_resnet18.yaml"


GENERATIONS = (
    Generation("R-CNN", "rcnn", True),
    Generation("Fast R-CNN", "fast_rcnn", True),
    Generation("Faster R-CNN", "faster_rcnn", False),
)

# Full size: the quick start's val split and classification set, 1000 detection training images (the
# quick start makes 4000; selective search and R-CNN's feature cache grow with the train split), every
# config as it is.
FULL = {"num_train": 1000, "num_val": 200, "image_size": 256, "cls_per_class": 300}
FULL_CLASSIFIER: list[str] = []
FULL_DETECTORS: dict[str, list[str]] = {g.key: [] for g in GENERATIONS}

# Quick: tiny sets and a few dozen iterations (a smoke run of the whole flow, 2-3 minutes on 2 cores).
QUICK = {"num_train": 24, "num_val": 8, "image_size": 128, "cls_per_class": 40}
QUICK_CLASSIFIER = ["solver.epochs=1", "data.num_workers=0", "test.ten_crop=false"]
_QUICK_COMMON = [
    "data.min_size=[128]", "data.max_size=128", "test.min_size=128", "test.max_size=128",
    "data.num_workers=0", "solver.warmup_iters=5", "solver.log_period=5",
]  # fmt: skip
# Fast / Faster R-CNN: one learning rate for the short runs (from a classifier of one epoch, a few dozen
# iterations at a config's full-length rate can diverge).
_QUICK_SHORT = [
    "solver.base_lr=0.02",
    "solver.max_iter=20",
    "solver.steps=[15]",
    "solver.checkpoint_period=20",
]
QUICK_DETECTORS = {
    "rcnn": [
        *_QUICK_COMMON, "model.rcnn.max_proposals=100", "model.rcnn.batch_pos=8",
        "model.rcnn.batch_neg=24", "model.rcnn.svm_init_negatives=200", "model.rcnn.hard_negative_rounds=1",
        "model.rcnn.chunk_size=1024", "model.rcnn.batch_size=128", "solver.max_iter=10", "solver.steps=[8]",
        "solver.checkpoint_period=10",
    ],
    "fast_rcnn": [*_QUICK_COMMON, *_QUICK_SHORT],
    "faster_rcnn": [*_QUICK_COMMON, "model.rpn.anchor_sizes=[16,32,64,128]", *_QUICK_SHORT],
}  # fmt: skip
# ----------------------------------------------------------------------------------------------- the section


def run_section(
    *,
    device: str = "cpu",
    quick: bool = False,
    threads: int = 1,
    reps: int | None = None,
    data: str | None = None,
    classifier: str | None = None,
    work_dir: str | None = None,
) -> str:
    """The markdown section ``## The three generations side by side`` (see the module docstring).

    device: where the detectors train and run (``solver.device``); quick: tiny sets and short runs;
    threads: intra-op CPU threads of the test-time measurements (the commands use torch's default);
    reps: passes over the val images for the test-time figures (default 1); data: an existing synthetic
    data folder; classifier: an existing classifier checkpoint; work_dir: where the runs go (default: a
    temporary folder, removed afterwards; it must not hold the runs of an earlier call, which the tools
    would resume from).
    """
    with measuring(device, threads):  # a CUDA device is refused where there is none, before any step
        pass
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="generations_") as tmp:
            return _run(device, quick, threads, reps, data, classifier, tmp)
    os.makedirs(work_dir, exist_ok=True)
    return _run(device, quick, threads, reps, data, classifier, os.path.abspath(work_dir))


def _run(device, quick, threads, reps, data, classifier, work) -> str:
    sizes = QUICK if quick else FULL
    cls_overrides = QUICK_CLASSIFIER if quick else FULL_CLASSIFIER
    det_overrides = QUICK_DETECTORS if quick else FULL_DETECTORS
    data_dir = os.path.abspath(data) if data else os.path.join(work, "data")
    classifier = os.path.abspath(classifier) if classifier else None
    names = {work: "WORK", **({data_dir: "DATA"} if data else {})}
    steps = Steps({**names, **({classifier: "CLASSIFIER"} if classifier else {})})
    outputs = ["proposals", *(g.key for g in GENERATIONS)]
    outputs += ([] if data else ["data"]) + ([] if classifier else ["classifier"])
    check_fresh_work_folder(work, outputs)
    proposals = {split: os.path.join(work, "proposals", split) for split in ("train", "val")}
    proposal_overrides = [f"data.{split}_proposals={folder}" for split, folder in proposals.items()]
    detector_args: dict[str, list[str]] = {}
    for g in GENERATIONS:
        detector_args[g.key] = [
            f"model.backbone.weights={classifier or os.path.join(work, 'classifier', 'model_final.pth')}",
            *data_overrides(data_dir), *(proposal_overrides if g.selective_search else []),
            f"solver.device={device}", f"output.dir={os.path.join(work, g.key)}", *det_overrides[g.key],
        ]  # fmt: skip
        check_overrides(g.config, detector_args[g.key])
    cls_args = [f"data.root={data_dir}/classification", f"output.dir={work}/classifier",
                f"solver.device={device}", *cls_overrides]  # fmt: skip
    if not classifier:
        check_overrides(CLASSIFIER_CONFIG, cls_args, classification=True)

    if not data:
        generate_data(steps, data_dir, sizes)
    if not classifier:
        steps.run(
            "pretrain the backbone as a classifier",
            ["tools/train_classifier.py", "--config", CLASSIFIER_CONFIG, *cls_args],
        )
    proposal_args = [*data_overrides(data_dir), *proposal_overrides]
    ss_train = steps.run(
        "selective search proposals, train split",
        ["tools/compute_proposals.py", "--config", PROPOSALS_CONFIG, "--split", "train", "--no-progress",
         *proposal_args],
    )  # fmt: skip
    steps.run(
        "selective search proposals, val split",
        ["tools/compute_proposals.py", "--config", PROPOSALS_CONFIG, "--split", "val", "--no-progress",
         *proposal_args],
    )  # fmt: skip
    training: dict[str, float] = {}
    metrics: dict[str, dict] = {}
    runs: dict[str, str] = {}
    for g in GENERATIONS:
        training[g.key] = steps.run(
            f"train {g.name} (COCO evaluation at the end)",
            ["tools/train_detector.py", "--config", g.config, "--no-progress", *detector_args[g.key]],
        )
        runs[g.key] = os.path.join(work, g.key)
        with open(os.path.join(runs[g.key], "metrics.json"), encoding="utf-8") as f:
            metrics[g.key] = json.load(f)

    print("\n== test time: every val image through each detector and selective search", file=sys.stderr)
    with measuring(device, threads):
        proposals_cfg = load_config(os.path.join(ROOT, PROPOSALS_CONFIG), DetectionConfig, proposal_args)
        times = measure_test_time(runs, proposals_cfg, device, reps or 1)
    return _markdown(
        times=times, training=training, metrics=metrics, ss_train=ss_train, steps=steps, runs=runs,
        data_dir=data_dir, data_given=bool(data), classifier_given=bool(classifier),
        device=device, quick=quick, threads=threads, reps=reps,
    )  # fmt: skip


def _split_size(data_dir: str, split: str) -> tuple[int, str]:
    """(number of images, "WxH" sizes) of a detection split's annotation file."""
    with open(os.path.join(data_dir, "detection", f"{split}.json"), encoding="utf-8") as f:
        images = json.load(f)["images"]
    sizes = sorted({f"{img['width']}x{img['height']}" for img in images})
    return len(images), "/".join(sizes)


def _markdown(
    *, times, training, metrics, ss_train, steps, runs, data_dir, data_given, classifier_given,
    device, quick, threads, reps,
) -> str:  # fmt: skip
    ss = times["selective search"]
    rows = []
    for g in GENERATIONS:
        m = metrics[g.key]
        det = times[g.key]
        total = [a + b for a, b in zip(ss, det)] if g.selective_search else det
        rows.append(
            [
                g.name,
                "selective search" if g.selective_search else "RPN",
                f"{m['AP']:.3f}",
                f"{m['AP50']:.3f}",
                f"{ss_train:.1f}" if g.selective_search else "-",
                f"{training[g.key]:.1f}",
                f"{statistics.median(ss):.3f}" if g.selective_search else "-",
                f"{statistics.median(det):.3f}",
                f"**{statistics.median(total):.3f}**",
            ]
        )
    num_train, train_size = _split_size(data_dir, "train")
    num_val, val_size = _split_size(data_dir, "val")
    schedule, backbones = [], {}
    for g in GENERATIONS:
        cfg = load_config(os.path.join(runs[g.key], "config.yaml"), DetectionConfig)
        what = "fine-tuning iterations, then SVMs and box regression" if g.key == "rcnn" else "iterations"
        schedule.append(
            f"{g.name} {cfg.solver.max_iter} {what} of {cfg.solver.ims_per_batch} images, "
            f"lr {cfg.solver.base_lr:g}" + (", autocast (`solver.amp`)" if cfg.solver.amp else "")
        )
        b = cfg.model.backbone
        options = ", ".join(f"{k}: {json.dumps(v)}" for k, v in b.options.items())  # YAML's spelling
        backbones.setdefault(f"`{b.name}` `{{{options}}}`", []).append(g.name)
    if len(backbones) == 1:
        backbone = f"One backbone ({next(iter(backbones))}) for all three"
    else:
        backbone = "Backbones: " + "; ".join(f"{', '.join(n)} {b}" for b, n in backbones.items())
    command = command_line("generations", device=device, quick=quick, threads=threads, reps=reps)
    if data_given:
        command += " --data DATA"
    if classifier_given:
        command += " --classifier CLASSIFIER"
    lines = [
        "## The three generations side by side: R-CNN, Fast R-CNN, Faster R-CNN",
        "",
    ]
    header = [
        "detector", "proposals", "COCO AP", "AP50", "selective search, train split (s)", "training (s)",
        "proposals s/img", "detector s/img", "test s/img, proposals included",
    ]  # fmt: skip
    lines += markdown_table(header, rows)
    lines += measured_on(device, threads, command)
    lines += [
        f"- Synthetic detection set: {num_train} train images ({train_size}), {num_val} val images "
        f"({val_size}); AP and AP50 are pycocotools' on the val split, from the `metrics.json` each "
        "training command writes. "
        + backbone
        + ", initialised from one classifier checkpoint (`model.backbone.weights`); "
        + "; ".join(schedule)
        + ".",
        "- Training (s): wall clock of the `tools/train_detector.py` command (process start and the final "
        "COCO evaluation included). Selective search, train split (s): wall clock of "
        "`tools/compute_proposals.py --split train` (one process per core), which R-CNN and Fast R-CNN "
        "need before training.",
        f"- Test time: medians over the {num_val} val images ({reps or 1} pass(es), after "
        f"{WARMUP_IMAGES} warm-up images), batch 1, the images decoded and transformed beforehand; the "
        "detectors, loaded from their `model_final.pth` as `tools/evaluate.py` loads them, and selective "
        "search on the image file (`fast`, one thread, what the proposal workers run) alternate image by "
        "image in one process. The last column is the median of each image's search plus detector time "
        "for R-CNN and Fast R-CNN, the detector alone for Faster R-CNN (its RPN is part of the network).",
        "- Commands (WORK: the work folder"
        + ("; DATA: the given data folder" if data_given else "")
        + ("; CLASSIFIER: the given classifier checkpoint" if classifier_given else "")
        + "), with the wall clock of each:",
        "",
        "```bash",
    ]
    lines += [f"{cmd}   # {seconds:.1f} s" for _, cmd, seconds in steps.commands]
    lines += ["```"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sets and short runs (2-3 minutes)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--data", default=None, help="existing synthetic data folder (make_synthetic's)")
    parser.add_argument("--classifier", default=None, help="existing classifier checkpoint")
    parser.add_argument("--work-dir", default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    print(
        run_section(
            device=args.device, quick=args.quick, threads=args.threads, reps=args.reps, data=args.data,
            classifier=args.classifier, work_dir=args.work_dir,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
