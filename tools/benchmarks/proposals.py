"""Selective search against RPN proposals for Fast R-CNN (the Faster R-CNN paper's Table 1 / Fig. 4 on the
synthetic data): recall at 300 proposals per image and the COCO AP of one Fast R-CNN trained and tested on
each. Run from the repository root, every output in a work folder:

    python tools/benchmark.py --sections proposals [--quick]

1. generate the synthetic detection set (``tools/make_synthetic.py``);
2. train a Faster R-CNN (``configs/faster_rcnn/synthetic_resnet18.yaml``) and dump its RPN's proposals
   (``tools/compute_proposals.py --method rpn``, at most 2000 per image);
3. selective search (``tools/compute_proposals.py``, the ``fast`` preset, at most 2000);
4. score both on the val split (``tools/evaluate.py --proposals``);
5. train and test one Fast R-CNN (``configs/fast_rcnn/synthetic_resnet18.yaml``) on each.

``--quick``: a tiny set, a narrow backbone and a few dozen iterations, from random initialisation: a smoke
run of the whole flow (the AP it gives says little); without it the configs' full runs (hours on 2 cores).
"""

from __future__ import annotations

import json
import os
import tempfile

from tools.benchmarks.common import markdown_table
from tools.benchmarks.generations import Steps, data_overrides

FASTER = "configs/faster_rcnn/synthetic_resnet18.yaml"
FAST = "configs/fast_rcnn/synthetic_resnet18.yaml"
FULL = {"num_train": 1000, "num_val": 200, "image_size": 256}
QUICK = {"num_train": 24, "num_val": 8, "image_size": 128}
_QUICK_RUN = [
    "data.min_size=[128]", "data.max_size=128", "test.min_size=128", "test.max_size=128",
    "data.num_workers=0", "model.backbone.options={width: 8}", "solver.warmup_iters=5",
    "solver.log_period=10",
    "solver.base_lr=0.02", "solver.max_iter=60", "solver.steps=[45]", "solver.checkpoint_period=60",
    "solver.amp=false", "solver.channels_last=false",
]  # fmt: skip
QUICK_OVERRIDES = {"faster": [*_QUICK_RUN, "model.rpn.anchor_sizes=[16,32,64,128]"], "fast": _QUICK_RUN}


def run_section(
    *, device: str = "cpu", quick: bool = False, threads: int = 1, reps: int | None = None
) -> str:
    """The markdown section ``## Selective search against RPN proposals`` (see the module docstring)."""
    with tempfile.TemporaryDirectory(prefix="rcnn_proposals_") as work:
        return _run(device, quick, work)


def _run(device: str, quick: bool, work: str) -> str:
    steps = Steps({work: "WORK"})
    sizes = QUICK if quick else FULL
    data = os.path.join(work, "data")
    steps.run(
        "generate the synthetic detection set",
        ["tools/make_synthetic.py", "--output", data, "--task", "detection", "--seed", "0",
         "--num-train", str(sizes["num_train"]), "--num-val", str(sizes["num_val"]),
         "--image-size", str(sizes["image_size"])],
    )  # fmt: skip
    base = [*data_overrides(data), f"solver.device={device}"]
    faster = [*base, *(QUICK_OVERRIDES["faster"] if quick else [])]
    fast = [*base, *(QUICK_OVERRIDES["fast"] if quick else [])]
    steps.run("train the Faster R-CNN", ["tools/train_detector.py", "--config", FASTER, "--no-progress",
                                          *faster, f"output.dir={work}/faster_rcnn"])  # fmt: skip
    folders = {"selective search": f"{work}/ss", "RPN": f"{work}/rpn"}
    steps.run("the RPN's proposals", [
        "tools/compute_proposals.py", "--method", "rpn", "--config", FASTER, "--no-progress",
        "--checkpoint", f"{work}/faster_rcnn/model_final.pth", "--output", folders["RPN"], *faster,
        "proposals.max_boxes=2000",
    ])  # fmt: skip
    steps.run("selective search", ["tools/compute_proposals.py", "--config", FAST, "--no-progress",
                                   "--output", folders["selective search"], *fast])  # fmt: skip
    rows = []
    for name, folder in folders.items():
        key = "ss" if name == "selective search" else "rpn"
        steps.run(f"score the {name} proposals", [
            "tools/evaluate.py", "--gt", f"{data}/detection/val.json", "--proposals", f"{folder}/val",
            "--output", f"{work}/quality_{key}",
        ])  # fmt: skip
        steps.run(f"Fast R-CNN on the {name} proposals", [
            "tools/train_detector.py", "--config", FAST, "--no-progress", *fast,
            f"data.train_proposals={folder}/train", f"data.val_proposals={folder}/val",
            f"output.dir={work}/fast_rcnn_{key}",
        ])  # fmt: skip
        with open(f"{work}/quality_{key}/proposals_val.json", encoding="utf-8") as f:
            quality = json.load(f)
        with open(f"{work}/fast_rcnn_{key}/metrics.json", encoding="utf-8") as f:
            metrics = json.load(f)
        at300 = quality["top_n"]["300"]
        rows.append([
            name, f"{quality['boxes_per_image_mean']:.0f}", f"{at300['recall@0.5']:.3f}",
            f"{at300['recall@0.7']:.3f}", f"{at300['AR']:.3f}", f"{quality['all']['recall@0.7']:.3f}",
            f"{metrics['AP']:.3f}", f"{metrics['AP50']:.3f}",
        ])  # fmt: skip
    header = ["proposals", "boxes per image", "recall@0.5 (300)", "recall@0.7 (300)", "AR@300",
              "recall@0.7 (all)", "Fast R-CNN AP", "AP50"]  # fmt: skip
    command = "python tools/benchmark.py --sections proposals" + (" --quick" if quick else "")
    command += f" --device {device}" if device != "cpu" else ""
    label = " (QUICK smoke run: tiny set, few iterations; not the full comparison)" if quick else ""
    lines = [
        f"## Selective search against RPN proposals{label}",
        "",
        *markdown_table(header, rows),
        "",
        f"`{command}`; synthetic set of {sizes['num_train']} train / {sizes['num_val']} val images "
        f"({sizes['image_size']}x{sizes['image_size']}); recall and AR (IoU 0.5:0.95) on the val split, for "
        "the 300 best-ranked proposals of each image; AP / AP50: pycocotools on the val split, Fast R-CNN "
        "trained and tested on the same proposals.",
        "",
        "The steps (WORK: the work folder; seconds of wall clock):",
        "",
        "```",
        *(f"{shown}   # {seconds:.1f} s" for _, shown, seconds in steps.commands),
        "```",
    ]
    return "\n".join(lines)
