"""The main job on the built-in synthetic data, start to finish:

1. generate the synthetic detection and classification sets (``tools/make_synthetic.py``);
2. pretrain a small backbone as a classifier (``tools/train_classifier.py``);
3. train Faster R-CNN with a Feature Pyramid Network on that backbone (``tools/train_detector.py``,
   evaluates COCO mAP at the end);
4. draw the detections of a few val images (``tools/infer.py``).

Each step runs as its own command, printed before it runs, so any step can be repeated by hand.
Outputs go to ``--output`` (default ``outputs/quickstart``): ``classifier/``, ``detector/`` (with
``metrics.json``), ``infer/`` (drawn PNGs and ``detections.json``) and ``summary.json``. An ``--output``
that holds an earlier job's runs is refused (exit 2) unless ``--overwrite`` asks to train again.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import subprocess
import sys
import time
from typing import TextIO

from rcnn.tasks.run_dir import previous_run_files
from rcnn.utils.io import atomic_write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSIFIER_CONFIG = os.path.join("configs", "classification", "synthetic_resnet18.yaml")
DETECTOR_CONFIG = os.path.join("configs", "faster_rcnn", "synthetic_resnet18_fpn.yaml")


class StepFailed(RuntimeError):
    """A step's command exited with a non-zero code; the message names the step, the code and the command,
    and ``status`` keeps the code (the job exits with it)."""

    def __init__(self, title: str, status: int, command: list[str]) -> None:
        super().__init__(f"step '{title}' failed (exit {status}): {shlex.join(command)}")
        self.status = status


def run_step(title: str, args: list[str], *, log: TextIO | None = None) -> float:
    """Run ``python ARGS`` from the repository root, the title and the command printed first (to ``log``,
    default stdout). Returns seconds taken; raises :class:`StepFailed` if the command fails."""
    command = [sys.executable, *args]
    print(f"\n== {title}\n$ {shlex.join(['python', *args])}", file=log or sys.stdout, flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode != 0:  # the step printed its own error line; name the step and keep its status
        raise StepFailed(title, result.returncode, command)
    return time.perf_counter() - start


def synthetic_data_args(
    output: str,
    *,
    seed: int,
    num_train: int,
    num_val: int,
    image_size: int,
    cls_per_class: int,
    cls_image_size: int | None = None,
) -> list[str]:
    """The arguments of ``tools/make_synthetic.py`` that write both synthetic sets to ``output``: detection
    ``num_train`` / ``num_val`` images of ``image_size``, classification ``cls_per_class`` train images per
    class and a fifth of that (at least 10) val images, of ``cls_image_size`` (None: ``image_size``)."""
    cls_val = max(cls_per_class // 5, 10)
    cls_size = [] if cls_image_size is None else ["--cls-image-size", str(cls_image_size)]
    return [
        "tools/make_synthetic.py", "--output", output, "--task", "both", "--seed", str(seed),
        "--num-train", str(num_train), "--num-val", str(num_val), "--image-size", str(image_size),
        "--cls-num-train", str(cls_per_class), "--cls-num-val", str(cls_val), *cls_size,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default="outputs/quickstart")
    parser.add_argument("--data", default="datasets/synthetic", help="where the synthetic sets are written")
    parser.add_argument("--num-train", type=int, default=4000, help="detection training images")
    parser.add_argument("--num-val", type=int, default=200, help="detection val images")
    parser.add_argument("--image-size", type=int, default=256, help="side of the detection images")
    parser.add_argument(
        "--cls-image-size", type=int, default=None,
        help="side of the classification images (default: --image-size; the classifier config resizes "
        "them to 72 and crops 64)",
    )  # fmt: skip
    parser.add_argument(
        "--cls-per-class", type=int, default=300, help="classification train images per class"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--classifier", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for the classifier config")  # fmt: skip
    parser.add_argument("--detector", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides for the detector config")  # fmt: skip
    parser.add_argument("--num-drawn", type=int, default=8, help="val images to draw detections on")
    parser.add_argument(
        "--overwrite", action="store_true", help="train again over the runs of an earlier job in --output"
    )
    args = parser.parse_args(argv)
    earlier = [
        os.path.join(args.output, step)
        for step in ("classifier", "detector")
        if previous_run_files(os.path.join(ROOT, args.output, step))
    ]
    if earlier and not args.overwrite:  # never silently over an earlier job's runs
        print(
            f"error: {' and '.join(earlier)} hold an earlier job's runs: give another --output, "
            "or --overwrite to train again",
            file=sys.stderr,
        )
        return 2
    try:
        return run_job(args)
    except StepFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return err.status


def run_job(args: argparse.Namespace) -> int:
    """The four steps and the summary (``main``'s arguments)."""
    out = args.output
    data = args.data
    timings: dict[str, float] = {}
    overwrite = ["--overwrite"] if args.overwrite else []
    timings["data"] = run_step(
        "generate the synthetic data",
        synthetic_data_args(
            data, seed=args.seed, num_train=args.num_train, num_val=args.num_val,
            image_size=args.image_size, cls_per_class=args.cls_per_class, cls_image_size=args.cls_image_size,
        ),
    )  # fmt: skip
    classifier_dir = os.path.join(out, "classifier")
    timings["classifier"] = run_step(
        "pretrain the backbone as a classifier",
        ["tools/train_classifier.py", "--config", CLASSIFIER_CONFIG,
         f"data.root={data}/classification", f"output.dir={classifier_dir}", f"solver.seed={args.seed}",
         *overwrite, *args.classifier],
    )  # fmt: skip
    detector_dir = os.path.join(out, "detector")
    det = f"{data}/detection"
    timings["detector"] = run_step(
        "train Faster R-CNN (FPN) on the pretrained backbone (COCO evaluation at the end)",
        ["tools/train_detector.py", "--config", DETECTOR_CONFIG,
         f"model.backbone.weights={classifier_dir}/model_final.pth",
         f"data.train_images={det}/train", f"data.train_annotations={det}/train.json",
         f"data.val_images={det}/val", f"data.val_annotations={det}/val.json",
         f"output.dir={detector_dir}", f"solver.seed={args.seed}", *overwrite, *args.detector],
    )  # fmt: skip
    val_images = sorted(glob.glob(os.path.join(ROOT, det, "val", "*.png")))[: args.num_drawn]
    draw_dir = os.path.join(out, "infer", "images")
    os.makedirs(os.path.join(ROOT, draw_dir), exist_ok=True)
    for path in val_images:  # a small folder of inputs, so the command below stays short
        target = os.path.join(ROOT, draw_dir, os.path.basename(path))
        if not os.path.exists(target):
            os.symlink(os.path.abspath(path), target)
    timings["infer"] = run_step(
        "draw detections on a few val images",
        ["tools/infer.py", "--config", DETECTOR_CONFIG, "--checkpoint", f"{detector_dir}/model_final.pth",
         "--input", draw_dir, "--output", os.path.join(out, "infer"), *args.detector],
    )  # fmt: skip

    with open(os.path.join(ROOT, detector_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    with open(os.path.join(ROOT, classifier_dir, "final_metrics.json"), encoding="utf-8") as f:
        classifier_metrics = json.load(f)
    summary = {
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "total_seconds": round(sum(timings.values()), 1),
        "classifier": classifier_metrics,
        "detector": {k: metrics[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl") if k in metrics},
    }
    atomic_write_json(summary, os.path.join(ROOT, out, "summary.json"))
    print("\n== summary")
    print(json.dumps(summary, indent=2))
    print(f"drawn detections: {os.path.join(out, 'infer')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
