"""Benchmarks, one command: measure, print the tables, and with ``--write-docs`` put them into
``docs/benchmarks.md``.

    python tools/benchmark.py --write-docs                   # every section, full size (long: see below)
    python tools/benchmark.py --sections ops detector --write-docs   # some; the others stay as they were
    python tools/benchmark.py --quick --output /tmp/bench.md # tiny cases, a minute or two, another file
    python tools/benchmark.py --sections ops --quick         # tables on stdout only, no file written
    python tools/benchmark.py --sections detector ops --device cuda --write-docs   # the GPU tables

Sections (each a module of :mod:`tools.benchmarks` with ``run_section(...) -> markdown``):

* ``main_job``: the README's main job (``tools/quickstart.py``) end to end: seconds per step, the
  classifier's top-1/top-5 error, the detector's COCO AP table;
* ``detector``: our Faster R-CNN against torchvision's ``FasterRCNN`` on the same trunk, head and weights:
  inference images/s (batch 1 and 4) and training iterations/s (batch 2), peak memory, detections compared,
  and each model's fraction of the FLOP-bound limit (multiply-adds per image over the measured matmul peak);
* ``fpn``: rcnn's R50-FPN against torchvision's own ``fasterrcnn_resnet50_fpn`` on identical (converted)
  weights, 600x1000 and 256x256: images/s, peak memory, detections compared; R50-C4 against R50-FPN; each
  model's fraction of the FLOP-bound limit;
* ``ops``: ``nms`` / ``batched_nms`` / ``roi_pool`` / ``roi_align`` against ``torchvision.ops`` directly;
* ``roi_kernels``: our CPU RoIAlign kernels (channels-last forward, separable backward) against
  ``torchvision.ops.roi_align`` at the detectors' map sizes, inference and training;
* ``classifier``: classifier training images/s against a plain loop on the torchvision model, and the share
  of time the training loop waits for data;
* ``efficiency``: backbone forward multiply-adds per second as a fraction of the measured matmul peak;
* ``selective_search``: seconds per image and recall / MABO of the ``fast`` preset (with
  ``--opencv-python PATH``, against OpenCV-contrib's C++ in another environment), and the proposal
  cache's throughput over a dataset split (images/s through ``rcnn.proposals.compute``);
* ``generations``: R-CNN, Fast R-CNN and Faster R-CNN side by side on the synthetic data, one backbone and
  one pretrained classifier: COCO AP / AP50, training seconds (and the train split's selective search),
  test seconds per image with the proposals (``--data DIR`` / ``--classifier PATH`` reuse a generated
  set / a pretrained classifier; ``--work-dir DIR`` keeps the runs);
* ``svd``: truncated SVD of fc6-fc7 at test time (Fast R-CNN, Sec. 3.1) on the AlexNet Fast R-CNN of
  ``configs/fast_rcnn/synthetic_alexnet.yaml``: AP change and speed-up at several ranks (``--svd-run DIR``
  measures a finished training run; else the classifier, proposals and detector are trained first);
* ``onnx`` (:mod:`tools.benchmarks.onnx_inference`): the exported Faster R-CNN in ONNX Runtime against
  our eager inference, images/s side by side on the same images, detections compared (``--onnx-runs
  RUN_DIR [RUN_DIR ...]``: trained detectors of ``tools/train_detector.py``, C4 or FPN, each on the first
  ``--onnx-images`` (20) images of its validation set);

* ``proposals``: selective search against a trained Faster R-CNN's RPN proposals for Fast R-CNN:
  recall at 300 proposals, AR@300, and the AP of one Fast R-CNN trained and tested on each;
* ``accuracy`` (:mod:`tools.benchmarks.accuracy`): COCO AP of the main job's FPN detector against
  torchvision's ``FasterRCNN`` (composed from torchvision's parts around a copy of the same trunk + FPN)
  from the same initial weights, data, iterations and schedule, on two sets made from scikit-image's
  photos that the defaults were not tuned on; training seconds (the full run needs the classifier
  checkpoint in ``RCNN_ACCURACY_WEIGHTS``, e.g. ``outputs/quickstart/classifier/model_final.pth``).

Every measurement inside a section is interleaved (the compared runs alternate, order flipped every
repetition) and reported as medians and ratios from one run, so the load of other processes hits both
sides alike. Each section records its own command, the machine and the date. The tables always go to
stdout; a document (``--output FILE``, or ``docs/benchmarks.md`` with ``--write-docs``) is written only
when asked for. In the document a section is replaced in place between ``<!-- benchmark:NAME -->`` /
``<!-- /benchmark:NAME -->`` markers; sections measured on another device are kept apart (``NAME@cuda``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script from anywhere: the repository's packages first
    sys.path.insert(0, ROOT)

from rcnn.tasks import cli  # noqa: E402 - after the path set-up above
from rcnn.utils.io import atomic_write_text  # noqa: E402

SECTIONS = (
    "main_job", "detector", "ops", "roi_kernels", "classifier", "efficiency", "selective_search",
    "generations", "svd", "proposals", "onnx", "fpn", "accuracy",
)  # fmt: skip
DOCS = os.path.join(ROOT, "docs", "benchmarks.md")
TITLE = "# Benchmarks"
INTRO = (
    "Measured figures, each with the command that produced it. Ratios compare runs measured side by side "
    "in one process (interleaved), never figures from different runs. Regenerate a section with "
    "`python tools/benchmark.py --sections NAME --write-docs`."
)


def machine_line(device: str) -> str:
    """``CPU model, N cores, torch X, torchvision Y, device D, date`` of this run."""
    import torch
    import torchvision

    # optional: a section's module loads only when it runs (each pulls in what it measures)
    from tools.benchmarks.common import cpu_model

    cpu = cpu_model()
    where = device
    if device.startswith("cuda") and torch.cuda.is_available():
        where = f"{device} ({torch.cuda.get_device_name(device)})"
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"device {where}, {datetime.date.today().isoformat()}"
    )


# ----------------------------------------------------------------------------------------------- sections


def module_section(module: str) -> Callable[[argparse.Namespace], str]:
    """A section that is ``tools.benchmarks.<module>.run_section(device, quick, threads, reps)``."""

    def run(args: argparse.Namespace) -> str:
        mod = importlib.import_module(f"tools.benchmarks.{module}")
        return mod.run_section(device=args.device, quick=args.quick, threads=args.threads, reps=args.reps)

    return run


def onnx_section(args: argparse.Namespace) -> str:
    """The onnx section: a random-weight model, or with ``--onnx-runs`` the trained detectors given."""
    mod = importlib.import_module("tools.benchmarks.onnx_inference")
    if args.onnx_runs:
        return mod.runs_section(
            args.onnx_runs, threads=args.threads, reps=args.reps, run_images=args.onnx_images
        )
    return mod.run_section(device=args.device, quick=args.quick, threads=args.threads, reps=args.reps)


def main_job_section(args: argparse.Namespace) -> str:
    """Run ``tools/quickstart.py`` (as the README's first command does, after the install) once per
    ``--seeds`` value, one after the other, and tabulate their ``summary.json``. ``--quick``: a tiny version
    (the test suite's sizes)."""
    if args.device != "cpu":
        raise SystemExit("main_job runs with the configs' device (auto); run it without --device")
    seeds = args.seeds or [0]
    runs = []  # (seed, wall seconds, summary)
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "run")
            command = ["tools/quickstart.py", "--output", out, "--data", os.path.join(tmp, "data")]
            command += ["--seed", str(seed)] + (QUICK_MAIN_JOB if args.quick else [])
            start = time.perf_counter()
            subprocess.run([sys.executable, *command], cwd=ROOT, check=True)
            wall = time.perf_counter() - start
            with open(os.path.join(out, "summary.json"), encoding="utf-8") as f:
                runs.append((seed, wall, json.load(f)))
    return main_job_markdown(runs, quick=args.quick)


def main_job_markdown(runs: list[tuple[int, float, dict]], *, quick: bool = False) -> str:
    """The main job's section from ``(seed, wall seconds, summary.json)`` of each run."""
    shown = ["python", "tools/quickstart.py"] + (QUICK_MAIN_JOB if quick else [])
    seeds = " ".join(str(seed) for seed, _, _ in runs)
    steps = list(runs[0][2]["seconds"])
    lines = [
        "## Main job: synthetic data -> classifier -> Faster R-CNN -> COCO mAP -> drawn detections",
        "",
        f"`{shlex.join(shown)}` (the README's first command, after the install) with `--seed` {seeds}, one "
        f"run after the other (`python tools/benchmark.py --sections main_job --seeds {seeds}`); "
        f"{machine_line('cpu')}.",
        "",
        "| step | " + " | ".join(f"seconds, seed {seed}" for seed, _, _ in runs) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for step in steps:
        lines.append(f"| {step} | " + " | ".join(f"{s['seconds'][step]:.0f}" for _, _, s in runs) + " |")
    lines.append(
        "| **total** (wall clock of the command) | "
        + " | ".join(f"**{wall:.0f}** ({wall / 60:.1f} min)" for _, wall, _ in runs)
        + " |"
    )
    metrics = list(runs[0][2]["detector"])
    lines += [
        "",
        "Classifier (val split) and Faster R-CNN (COCO evaluation with pycocotools on the synthetic val "
        "split) of each seed:",
        "",
        "| seed | classifier top-1 error | 10-crop top-1 | " + " | ".join(metrics) + " |",
        "|---|---|---|" + "---|" * len(metrics),
    ]
    for seed, _, s in runs:
        cls, det = s["classifier"], s["detector"]
        ten = f"{100 * cls['val10_top1_err']:.2f}%" if "val10_top1_err" in cls else "-"
        lines.append(
            f"| {seed} | {100 * cls['val_top1_err']:.2f}% | {ten} | "
            + " | ".join(f"{det[k]:.3f}" for k in metrics)
            + " |"
        )
    return "\n".join(lines) + "\n"


QUICK_MAIN_JOB = [
    "--num-train", "64", "--num-val", "16", "--image-size", "128", "--cls-per-class", "40",
    "--num-drawn", "2",
    "--classifier", "solver.epochs=2", "data.num_workers=0",
    "--detector", "data.min_size=[128]", "data.max_size=128", "test.min_size=128", "test.max_size=128",
    "data.num_workers=0", "model.rpn.anchor_sizes=[16,32,64,128]", "solver.max_iter=20", "solver.steps=[15]",
    "solver.warmup_iters=5", "solver.checkpoint_period=20",
]  # fmt: skip


SELECTIVE_SEARCH_NOTES = (
    "- `real photos`: scikit-image's astronaut, coffee, chelsea, rocket, coins and camera with boxes drawn "
    "by hand around every clearly visible object (a person, a head, a cup, a spoon, a cat's eyes, a rocket, "
    "each coin, a tripod...; `tools/benchmarks/real_photos.json` says how). Scored on the proposals of the "
    "timed runs: s / image is the mean of the speed table's per-photo medians.",
    "- `rcnn`: the `fast` preset (HSV, Lab; k 100, 200, 400; similarities CTSF, TSF, F: 18 strategies). "
    "`rcnn opencv strategies`: the same with OpenCV's fast-mode k values and similarities (k 150, 300, 450; "
    "CTSF, TSF: 12 strategies), the preset before the real photos. `opencv`: OpenCV-contrib's "
    "`switchToSelectiveSearchFast` in its own environment, `cv2.setNumThreads(1)`.",
)


def selective_search_section(args: argparse.Namespace) -> str:
    """Selective search speed and quality (:mod:`tools.benchmarks.selective_search`) and the proposal
    cache's throughput (:mod:`tools.benchmarks.proposal_cache`)."""
    # optional: a section's module loads only when it runs (each pulls in what it measures)
    from tools.benchmarks import proposal_cache

    # optional: a section's module loads only when it runs (each pulls in what it measures)
    from tools.benchmarks import selective_search as ss

    one = ss.PHOTOS[:1]
    quick = {"photos": one, "composite_photos": one, "repeats": 1, "composites_per_photo": 1}
    quick["synthetic_images"] = 2
    options = {**quick, "synthetic_size": 128} if args.quick else {}
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731
    # The preset's k values and similarities before the real photos (those of OpenCV's fast mode).
    variants = {"opencv strategies": {"k_values": (150, 300, 450), "similarities": ("CTSF", "TSF")}}
    result = ss.run("fast", opencv_python=args.opencv_python, log=log, variants=variants, **options)
    command = "python tools/benchmark.py --sections selective_search" + (" --quick" if args.quick else "")
    if args.opencv_python:
        command += " --opencv-python PATH"
    lines = [
        "## Selective search",
        "",
        f"`{command}`; {machine_line('cpu')}.",
        "",
        ss.to_markdown(result),
        *SELECTIVE_SEARCH_NOTES,
        "",
        proposal_cache.run_section(quick=args.quick),
    ]
    return "\n".join(lines)


def generations_section(args: argparse.Namespace) -> str:
    """The three detector generations side by side (:mod:`tools.benchmarks.generations`)."""
    # optional: a section's module loads only when it runs (each pulls in what it measures)
    from tools.benchmarks import generations

    return generations.run_section(
        device=args.device, quick=args.quick, threads=args.threads, reps=args.reps, data=args.data,
        classifier=args.classifier, work_dir=args.work_dir,
    )  # fmt: skip


def svd_section(args: argparse.Namespace) -> str:
    """Truncated SVD of fc6-fc7 at test time, speed-up and AP change (:mod:`tools.benchmarks.svd`)."""
    # optional: a section's module loads only when it runs (each pulls in what it measures)
    from tools.benchmarks import svd

    return svd.run_section(
        device=args.device, quick=args.quick, threads=args.threads, reps=args.reps, run=args.svd_run,
        data=args.data, work_dir=args.work_dir,
    )  # fmt: skip


RUNNERS: dict[str, Callable[[argparse.Namespace], str]] = {
    "main_job": main_job_section,
    "detector": module_section("detector"),
    "ops": module_section("ops"),
    "roi_kernels": module_section("roi_kernels"),
    "classifier": module_section("classifier"),
    "efficiency": module_section("efficiency"),
    "selective_search": selective_search_section,
    "generations": generations_section,
    "svd": svd_section,
    "proposals": module_section("proposals"),
    "onnx": onnx_section,
    "fpn": module_section("fpn"),
    "accuracy": module_section("accuracy"),
}


# -------------------------------------------------------------------------------------------- the document


def _markers(key: str) -> tuple[str, str]:
    return f"<!-- benchmark:{key} -->", f"<!-- /benchmark:{key} -->"


def update_document(text: str, key: str, body: str) -> str:
    """``text`` (a benchmarks document, possibly empty) with section ``key`` replaced by ``body``, or
    appended when it is not there yet."""
    if not text.strip():
        text = f"{TITLE}\n\n{INTRO}\n"
    start, end = _markers(key)
    block = f"{start}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip() + "\n\n" + block + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS, metavar="NAME",
        help=f"sections to measure (default: all): {', '.join(SECTIONS)}",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="tiny cases and few repetitions (a smoke run)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:i] (not for main_job)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op CPU threads (1: steadiest timings)")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default: per section)")
    parser.add_argument(
        "--opencv-python", default=None,
        help="selective_search: python of a separate environment with opencv-contrib",
    )  # fmt: skip
    parser.add_argument(
        "--data", default=None, help="generations, svd: an existing synthetic data folder (make_synthetic.py)"
    )
    parser.add_argument(
        "--classifier", default=None,
        help="generations: an existing classifier checkpoint (tools/train_classifier.py's model_final.pth)",
    )  # fmt: skip
    parser.add_argument(
        "--work-dir", default=None, help="generations, svd: keep the runs here (default: a temporary folder)"
    )
    parser.add_argument(
        "--svd-run", default=None,
        help="svd: a finished training run of configs/fast_rcnn/synthetic_alexnet.yaml (else one is trained)",
    )  # fmt: skip
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="main_job: run the job once per seed (default: 0)"
    )
    parser.add_argument(
        "--onnx-runs", nargs="+", default=None, metavar="RUN_DIR",
        help="onnx: trained detector runs (config.yaml, model_final.pth) to export and time",
    )  # fmt: skip
    parser.add_argument(
        "--onnx-images", type=int, default=20, help="onnx --onnx-runs: validation images per run (default 20)"
    )
    parser.add_argument("--output", default=None, help="update this markdown document with the sections")
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS} with the sections")
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.write_docs and args.output:
        parser.error("--write-docs updates docs/benchmarks.md; --output another file: give one of them")
    return cli.run_tool(lambda: run_sections(args), debug=args.debug)


def run_sections(args: argparse.Namespace) -> int:
    """Measure ``args.sections``; print each table, and write it into the document when one is asked for
    (``--output`` or ``--write-docs``). Errors go to :func:`cli.run_tool`."""
    document = DOCS if args.write_docs else args.output
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print(f"error: --device {args.device} but CUDA is not available", file=sys.stderr)
            return 2
    for name in args.sections:
        print(f"== {name}", file=sys.stderr, flush=True)
        body = RUNNERS[name](args)
        key = name if args.device == "cpu" else f"{name}@{args.device.split(':')[0]}"
        if document:
            text = open(document, encoding="utf-8").read() if os.path.exists(document) else ""
            atomic_write_text(update_document(text, key, body), document)  # after each section: nothing lost
        print(body)
    if document:
        print(f"written: {document}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
