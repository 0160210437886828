"""Truncated SVD of the region head's fully connected layers at test time (Girshick, Fast R-CNN, ICCV 2015,
Sec. 3.1): its speed-up and its AP change, measured on one trained Fast R-CNN with an fc6-fc7 head.

The detector is the AlexNet Fast R-CNN of ``configs/fast_rcnn/synthetic_alexnet.yaml`` on the built-in
synthetic data (the ResNet C4 heads of the other synthetic configs are convolutional: nothing to factor).
Unless ``run`` names a finished training run (its folder: ``config.yaml`` + ``model_final.pth``), the steps
run as the repository's commands, printed before they run, with every output in a work folder:

1. the synthetic data (``tools/make_synthetic.py``), unless ``data`` names a folder of that layout;
2. AlexNet pretrained as a classifier (``tools/train_classifier.py --config
   configs/classification/synthetic_alexnet.yaml``);
3. selective search proposals of both splits (``tools/compute_proposals.py``);
4. the detector trained from the classifier (``tools/train_detector.py``).

Then, in this process, the trained detector is loaded as ``tools/evaluate.py`` loads it, and copies of it
get their fc6 / fc7 replaced by rank-(t6, t7) factorisations (:func:`rcnn.modeling.svd.compress_box_head`)
for each setting of :data:`SETTINGS` (the paper's VGG-16 setting, 1024 / 256, and smaller ranks). Every
setting is COCO-evaluated on the val split, and timed on every val image (batch 1, the test transform and
the image's cached proposals prepared beforehand), the settings alternating image by image (order flipped
every image) after a warm-up: the whole detector call, and within it the region head (fc6-fc7, through
forward hooks).

    python tools/benchmark.py --sections svd [--quick] [--svd-run DIR] [--data DIR] [--work-dir DIR]

writes it into ``docs/benchmarks.md`` (``--output FILE`` elsewhere); from the repository root,
``python -m tools.benchmarks.svd`` takes the same options (``--run DIR`` for ``--svd-run DIR``) and prints
the markdown.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time

import torch
from torch import nn

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig
from rcnn.modeling.svd import compress_box_head
from rcnn.tasks.detection import build_detection_dataset, evaluate_detector, load_detector
from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring
from tools.benchmarks.steps import (
    Steps,
    check_fresh_work_folder,
    check_overrides,
    data_overrides,
    generate_data,
)
from tools.benchmarks.timing import sync

CLASSIFIER_CONFIG = "configs/classification/synthetic_alexnet.yaml"
DETECTOR_CONFIG = "configs/fast_rcnn/synthetic_alexnet.yaml"

# (name, rank of fc6, rank of fc7); None: the layer as trained. The paper keeps 1024 / 256 of VGG-16's.
SETTINGS: tuple[tuple[str, int | None, int | None], ...] = (
    ("full fc6-fc7", None, None),
    ("SVD 1024 / 256 (the paper's ranks)", 1024, 256),
    ("SVD 512 / 128", 512, 128),
    ("SVD 256 / 64", 256, 64),
)
WARMUP_IMAGES = 2

FULL = {"num_train": 1000, "num_val": 200, "image_size": 256, "cls_per_class": 300}
QUICK = {"num_train": 16, "num_val": 6, "image_size": 128, "cls_per_class": 30}
QUICK_CLASSIFIER = ["solver.epochs=1", "data.num_workers=0", "test.ten_crop=false"]
QUICK_DETECTOR = [
    "data.min_size=[128]", "data.max_size=128", "test.min_size=128", "test.max_size=128",
    "data.num_workers=0", "solver.max_iter=10", "solver.steps=[8]", "solver.warmup_iters=2",
    "solver.checkpoint_period=10", "solver.log_period=5",
]  # fmt: skip


def head_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """The fully connected layers of the region head in order (fc6, fc7), named relative to
    ``roi_heads`` as :func:`rcnn.modeling.svd.compress_box_head` names them."""
    return [
        (name, m)
        for name, m in model.roi_heads.box_head.named_modules(prefix="box_head")
        if isinstance(m, nn.Linear)
    ]


def compressed(model: nn.Module, ranks: tuple[int | None, ...], factors: dict | None = None) -> nn.Module:
    """A copy of ``model`` whose head layers (fc6, fc7, ...) are factored at ``ranks`` (None: kept);
    ``factors``: a cache of the layers' SVDs shared by the copies of one model (one SVD per layer)."""
    layers = head_linears(model)
    if len(layers) < len(ranks):
        raise ValueError(
            f"the region head has {len(layers)} fully connected layers, {len(ranks)} ranks given"
        )
    plan = {name: t for (name, _), t in zip(layers, ranks) if t is not None}
    model = copy.deepcopy(model)
    if plan:
        compress_box_head(model, plan, factors)
    return model


def head_macs(model: nn.Module) -> int:
    """Multiply-adds per RoI of the region head's linear layers (factored ones count both halves)."""
    return sum(
        m.in_features * m.out_features for m in model.roi_heads.box_head.modules() if isinstance(m, nn.Linear)
    )


class HeadTimer:
    """Accumulates the seconds spent in ``module``'s forward (hooks; CUDA synchronised around it)."""

    def __init__(self, module: nn.Module, device: str) -> None:
        self.seconds = 0.0
        self._start = 0.0
        self._device = device
        module.register_forward_pre_hook(self._before)
        module.register_forward_hook(self._after)

    def _before(self, module, inputs) -> None:
        sync(self._device)
        self._start = time.perf_counter()

    def _after(self, module, inputs, output) -> None:
        sync(self._device)
        self.seconds += time.perf_counter() - self._start


def measure(run: str, device: str, reps: int, *, progress: bool = True) -> dict:
    """Loads the trained run (``run``: a ``tools/train_detector.py`` output folder), builds every setting
    of :data:`SETTINGS`, evaluates and times each. Returns ``{"settings": [{name, ranks, macs, metrics,
    detector_s, head_s}, ...], "rois_per_image": float, "num_images": int, "config": DetectionConfig}``
    (seconds per image as lists aligned image by image)."""
    dev = torch.device(device)
    cfg = load_config(os.path.join(run, "config.yaml"), DetectionConfig)
    if cfg.model.roi_heads.svd_rank:
        raise ValueError(
            f"{run}/config.yaml: model.roi_heads.svd_rank must be 0 (the benchmark factors itself)"
        )
    base, _ = load_detector(cfg, os.path.join(run, "model_final.pth"), dev)
    if getattr(base, "proposal_generator", None) is not None:
        raise ValueError(
            f"{run}: expected a Fast R-CNN run (proposals from the dataset), got {cfg.model.type}"
        )
    dataset = build_detection_dataset(cfg, "val")
    factors: dict = {}  # one SVD per layer for all the settings
    models = [compressed(base, ranks, factors) for _, *ranks in SETTINGS]
    results = []
    for (name, *ranks), model in zip(SETTINGS, models):
        print(f"== evaluate: {name}", file=sys.stderr, flush=True)
        metrics = evaluate_detector(model, dataset, dev, batch_size=1, progress=progress)
        results.append({"name": name, "ranks": ranks, "macs": head_macs(model), "metrics": metrics})

    samples = [dataset[i] for i in range(len(dataset))]
    inputs = [([image.to(dev)], [target["proposals"].to(dev)]) for image, target in samples]
    timers = [HeadTimer(model.roi_heads.box_head, device) for model in models]

    def call(k: int, index: int) -> tuple[float, float]:
        images, proposals = inputs[index]
        head_before = timers[k].seconds
        sync(device)
        start = time.perf_counter()
        models[k](images, proposals=proposals)
        sync(device)
        return time.perf_counter() - start, timers[k].seconds - head_before

    print("== time: every val image through each setting, alternating", file=sys.stderr, flush=True)
    order = list(range(len(models)))
    detector_s: list[list[float]] = [[] for _ in models]
    head_s: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for index in range(min(WARMUP_IMAGES, len(inputs))):
            for k in order:
                call(k, index)
        step = 0
        for _ in range(reps):
            for index in range(len(inputs)):
                for k in order if step % 2 == 0 else order[::-1]:
                    total, head = call(k, index)
                    detector_s[k].append(total)
                    head_s[k].append(head)
                step += 1
    for result, det, head in zip(results, detector_s, head_s):
        result["detector_s"], result["head_s"] = det, head
    rois = [float(len(target["proposals"])) for _, target in samples]
    return {
        "settings": results,
        "rois_per_image": statistics.fmean(rois) if rois else 0.0,
        "num_images": len(samples),
        "head_shapes": [(m.in_features, m.out_features) for _, m in head_linears(base)],
        "config": cfg,
    }


# ----------------------------------------------------------------------------------------------- the section


def run_section(
    *,
    device: str = "cpu",
    quick: bool = False,
    threads: int = 1,
    reps: int | None = None,
    run: str | None = None,
    data: str | None = None,
    work_dir: str | None = None,
) -> str:
    """The markdown section ``## Truncated SVD of fc6-fc7 at test time`` (see the module docstring).

    run: a finished ``tools/train_detector.py`` run of the AlexNet Fast R-CNN config (nothing is trained
    then); data: an existing synthetic data folder; work_dir: where the runs go (default: a temporary
    folder, removed afterwards).
    """
    with measuring(device, threads):  # a CUDA device is refused where there is none, before any step
        pass
    steps = Steps({})
    if run is None:
        if work_dir is None:
            with tempfile.TemporaryDirectory(prefix="svd_") as tmp:
                return _train_and_measure(device, quick, threads, reps, data, tmp)
        os.makedirs(work_dir, exist_ok=True)
        return _train_and_measure(device, quick, threads, reps, data, os.path.abspath(work_dir))
    with measuring(device, threads):
        result = measure(run, device, reps or 1)
    return to_markdown(result, steps, device=device, quick=quick, threads=threads, reps=reps, given_run=True)


def _train_and_measure(device, quick, threads, reps, data, work) -> str:
    sizes = QUICK if quick else FULL
    data_dir = os.path.abspath(data) if data else os.path.join(work, "data")
    steps = Steps({work: "WORK", **({data_dir: "DATA"} if data else {})})
    outputs = ["proposals", "classifier", "detector"] + ([] if data else ["data"])
    check_fresh_work_folder(work, outputs)
    proposal_overrides = [
        f"data.{s}_proposals={os.path.join(work, 'proposals', s)}" for s in ("train", "val")
    ]
    run = os.path.join(work, "detector")
    det_args = [
        f"model.backbone.weights={os.path.join(work, 'classifier', 'model_final.pth')}",
        *data_overrides(data_dir), *proposal_overrides, f"solver.device={device}", f"output.dir={run}",
        *(QUICK_DETECTOR if quick else []),
    ]  # fmt: skip
    cls_args = [
        f"data.root={data_dir}/classification", f"output.dir={work}/classifier", f"solver.device={device}",
        *(QUICK_CLASSIFIER if quick else []),
    ]  # fmt: skip
    check_overrides(DETECTOR_CONFIG, det_args)
    check_overrides(CLASSIFIER_CONFIG, cls_args, classification=True)
    if not data:
        generate_data(steps, data_dir, sizes)
    steps.run(
        "pretrain AlexNet as a classifier",
        ["tools/train_classifier.py", "--config", CLASSIFIER_CONFIG, *cls_args],
    )
    steps.run(
        "selective search proposals, both splits",
        ["tools/compute_proposals.py", "--config", DETECTOR_CONFIG, "--no-progress",
         *data_overrides(data_dir), *proposal_overrides],
    )  # fmt: skip
    steps.run(
        "train the AlexNet Fast R-CNN (COCO evaluation at the end)",
        ["tools/train_detector.py", "--config", DETECTOR_CONFIG, "--no-progress", *det_args],
    )
    with measuring(device, threads):
        result = measure(run, device, reps or 1, progress=not quick)
    return to_markdown(result, steps, device=device, quick=quick, threads=threads, reps=reps, given_run=False)


def to_markdown(result: dict, steps: Steps, *, device, quick, threads, reps, given_run: bool) -> str:
    cfg = result["config"]
    rows = []
    base = result["settings"][0]
    base_det = statistics.median(base["detector_s"])
    base_head = statistics.median(base["head_s"])
    for s in result["settings"]:
        det, head = statistics.median(s["detector_s"]), statistics.median(s["head_s"])
        m = s["metrics"]
        ranks = " / ".join("-" if t is None else str(t) for t in s["ranks"])
        rows.append(
            [
                s["name"],
                ranks,
                f"{s['macs'] / 1e6:.1f}",
                f"{m['AP']:.3f}",
                f"{m['AP50']:.3f}",
                f"{m['AP'] - base['metrics']['AP']:+.3f}",
                f"{1000 * head:.1f}",
                f"{1000 * det:.1f}",
                f"{base_head / head:.2f}x" if head > 0 else "-",
                f"**{base_det / det:.2f}x**" if det > 0 else "-",
            ]
        )
    command = command_line("svd", device=device, quick=quick, threads=threads, reps=reps)
    if given_run:
        command += " --svd-run RUN"
    lines = [
        "## Truncated SVD of fc6-fc7 at test time (Fast R-CNN, Sec. 3.1)",
        "",
    ]
    header = [
        "setting", "ranks fc6 / fc7", "fc6+fc7 multiply-adds per RoI (M)", "COCO AP", "AP50", "AP change",
        "region head ms/img", "detector ms/img", "head speed-up", "detector speed-up",
    ]  # fmt: skip
    lines += markdown_table(header, rows)
    b = cfg.model.backbone
    shapes = ", ".join(f"fc{6 + i} {v} -> {u}" for i, (v, u) in enumerate(result["head_shapes"]))
    lines += measured_on(device, threads, command)
    lines += [
        f"- One trained Fast R-CNN (`{b.name}`, {shapes}; RoI pooling "
        f"{cfg.model.roi_heads.pooler}), images at {cfg.test.min_size} px, selective search proposals "
        f"(`{cfg.proposals.mode}`, at most {cfg.proposals.max_boxes}): "
        f"{result['rois_per_image']:.0f} RoIs per val image on average "
        "(the paper's VOC figures are for about 2000). Each setting is a copy of it "
        "with fc6 / fc7 replaced by their rank-t factorisations (`rcnn.modeling.svd.compress_box_head`; "
        "`model.roi_heads.svd_rank` applies one rank to both).",
        f"- AP, AP50: pycocotools on the {result['num_images']} val images. Times: medians over the val "
        f"images ({reps or 1} pass(es), after {WARMUP_IMAGES} warm-up images), batch 1, the settings "
        "alternating image by image in one process; detector: the whole call on the prepared image and its "
        "proposals (selective search itself is the same for every setting and not included); region head: "
        "fc6-fc7 within it. Speed-ups are against the first row.",
    ]
    if steps.commands:
        lines += ["- Commands (WORK: the work folder), with the wall clock of each:", "", "```bash"]
        lines += [f"{cmd}   # {seconds:.1f} s" for _, cmd, seconds in steps.commands]
        lines += ["```"]
    else:
        lines += [
            "- RUN: the output folder of `python tools/train_detector.py --config "
            f"{DETECTOR_CONFIG} model.backbone.weights=...` (the config's header lists the steps before it)."
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny sets and a 10-iteration run (a smoke test)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--run", default=None, help="a finished training run of " + DETECTOR_CONFIG)
    parser.add_argument("--data", default=None, help="existing synthetic data folder (make_synthetic's)")
    parser.add_argument("--work-dir", default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    print(
        run_section(
            device=args.device, quick=args.quick, threads=args.threads, reps=args.reps, run=args.run,
            data=args.data, work_dir=args.work_dir,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
