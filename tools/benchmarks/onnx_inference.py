"""ONNX benchmark: the exported Faster R-CNN in ONNX Runtime against our eager PyTorch inference.

:func:`run_section` returns a markdown section for ``docs/benchmarks.md``: images per second of the main
job's detector (``configs/faster_rcnn/synthetic_resnet18.yaml``, 9 classes, seeded random weights: speed
does not depend on what was learnt, but the number of boxes after the score threshold does) at the
config's test size, one image per call, on the same images for both: the eager model as
``tools/infer.py`` runs it (``torch.inference_mode``, the CPU RoIAlign kernel of :mod:`rcnn.ops`) and the
graph of ``tools/export.py`` in an ONNX Runtime session (CPU execution provider) with as many intra-op
threads. Each row also checks that the two give the same detections (count and labels; boxes within
1e-2 px, scores within 1e-4). Timings alternate the two call by call (the order flips every repetition)
after warm-up, with :func:`tools.benchmarks.detector.time_interleaved`, and report medians.

    python -m tools.benchmarks.onnx_inference [--quick] [--threads 1] [--reps 5]

With ``runs`` (``tools/benchmark.py --sections onnx --onnx-runs RUN_DIR [RUN_DIR ...]``) the section
times trained detectors instead: each run directory of ``tools/train_detector.py`` (its ``config.yaml``
and ``model_final.pth``) is exported and timed on the first ``run_images`` images of its config's
``data.val_images`` / ``data.val_annotations`` (resized by the config's test transforms), one row per run.
"""

from __future__ import annotations

import os
import tempfile

import torch

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.export import export_onnx
from rcnn.detectors.onnx_runtime import OnnxDetector
from rcnn.tasks.detection import build_detection_dataset, load_detector
from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring, section_main
from tools.benchmarks.detector import time_interleaved

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")
NUM_CLASSES = 9
FULL = {"images": 4, "reps": 5}
QUICK = {"images": 2, "reps": 1, "size": 64, "width": 8}  # a narrower trunk on small images
RUN_IMAGES = 20  # val images per trained run
HEADER = ["model", "image", "images", "detections", "eager images/s", "ONNX Runtime images/s",
          "ONNX Runtime / eager", "same detections"]  # fmt: skip


def _same(a: dict, b: dict) -> bool:
    if len(a["scores"]) != len(b["scores"]) or not torch.equal(a["labels"], b["labels"]):
        return False
    boxes_close = bool((a["boxes"] - b["boxes"]).abs().max() <= 1e-2) if len(a["scores"]) else True
    scores_close = bool((a["scores"] - b["scores"]).abs().max() <= 1e-4) if len(a["scores"]) else True
    return boxes_close and scores_close


def _measure(
    name: str, model: torch.nn.Module, images: list[torch.Tensor], threads: int, reps: int
) -> list[str]:
    """Export ``model``, time it against its graph in ONNX Runtime on ``images`` (one per call); the row."""
    height, width = images[0].shape[-2:]
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, os.path.join(tmp, "model.onnx"), example_size=(int(height), int(width)))
        session = OnnxDetector(path, threads=threads)
    with torch.inference_mode():
        eager = [model([img])[0] for img in images]
        onnx = [session([img])[0] for img in images]
        same = all(_same(a, b) for a, b in zip(eager, onnx))
        detections = sum(len(d["scores"]) for d in eager)
        timed = time_interleaved(
            {
                "eager": lambda: [model([img]) for img in images],
                "onnxruntime": lambda: [session([img]) for img in images],
            },
            warmup=1,
            reps=reps,
            device="cpu",
        )
    n = len(images)
    eager_ips, onnx_ips = n / timed["eager"][0], n / timed["onnxruntime"][0]
    sizes = sorted({f"{img.shape[-2]}x{img.shape[-1]}" for img in images})
    return [
        name,
        sizes[0] if len(sizes) == 1 else f"{sizes[0]} .. {sizes[-1]}",
        str(n),
        str(detections),
        f"{eager_ips:.2f}",
        f"{onnx_ips:.2f}",
        f"{onnx_ips / eager_ips:.2f}x",
        "yes" if same else "NO",
    ]


def runs_section(
    runs: list[str], *, threads: int = 1, reps: int | None = None, run_images: int = RUN_IMAGES
) -> str:
    """The section for trained detectors: one row per run directory (``config.yaml``, ``model_final.pth``)."""
    reps = reps or FULL["reps"]
    rows = []
    with measuring("cpu", threads):
        for run in runs:
            cfg = load_config(os.path.join(run, "config.yaml"), DetectionConfig, ["solver.device=cpu"])
            model, _ = load_detector(cfg, os.path.join(run, "model_final.pth"), torch.device("cpu"))
            dataset = build_detection_dataset(cfg, "val")
            images = [dataset[i][0].float() for i in range(min(run_images, len(dataset)))]
            kind = "Faster R-CNN" if cfg.model.type == "faster_rcnn" else "Fast R-CNN"
            neck = ", FPN" if cfg.model.neck == "fpn" else ""
            name = f"{kind}, {cfg.model.backbone.name}{neck} ({os.path.basename(os.path.normpath(run))})"
            rows.append(_measure(name, model, images, threads, reps))
    command = "python tools/benchmark.py --sections onnx --onnx-runs " + " ".join(runs)
    command += f" --onnx-images {run_images} --threads {threads} --reps {reps}"
    lines = ["## ONNX Runtime against eager inference (trained detectors)", ""]
    lines += markdown_table(HEADER, rows)
    lines += measured_on("cpu", threads, command)
    lines += [
        f"- The first {run_images} validation images of each run's config, at its test size, one image per "
        "call; `detections`: boxes over the score threshold on all of them.",
        "- Each run is exported as `tools/export.py` does (dynamic batch, height and width) and run in "
        "ONNX Runtime's CPU execution provider with the same number of intra-op threads.",
        f"- Median of {reps}+ interleaved repetitions after one warm-up call of each.",
    ]
    return "\n".join(lines) + "\n"


def run_section(
    *, device: str = "cpu", quick: bool = False, threads: int = 1, reps: int | None = None
) -> str:
    if device != "cpu":
        raise RuntimeError("the onnx section measures the CPU execution provider: run it with --device cpu")
    overrides = ["solver.device=cpu"]
    if quick:
        size = QUICK["size"]
        overrides += [
            f"test.min_size={size}",
            f"test.max_size={size}",
            f"model.backbone.options={{width: {QUICK['width']}}}",
        ]
    cfg = load_config(CONFIG, DetectionConfig, overrides)
    settings = QUICK if quick else FULL
    reps = reps or settings["reps"]
    height, width = cfg.test.min_size, cfg.test.max_size
    with measuring(device, threads):
        torch.manual_seed(0)
        model = build_detector(cfg.model, NUM_CLASSES).eval()
        generator = torch.Generator().manual_seed(1)
        images = [torch.rand(3, height, width, generator=generator) * 255 for _ in range(settings["images"])]
        name = f"Faster R-CNN, {cfg.model.backbone.name} ({os.path.basename(CONFIG)})"
        row = _measure(name, model, images, threads, reps)
    command = command_line(
        "tools.benchmarks.onnx_inference", device=device, quick=quick, threads=threads, reps=reps
    )
    lines = ["## ONNX Runtime against eager inference", ""]
    lines += markdown_table(HEADER, [row])
    lines += measured_on(device, threads, command)
    lines += [
        "- One image per call, the same images for both, seeded random weights; `detections`: boxes over the "
        f"score threshold ({cfg.model.roi_heads.score_thresh}) on all the images.",
        "- The graph is `tools/export.py`'s: dynamic batch, height and width, traced at the test size. "
        "ONNX Runtime: the CPU execution provider with the same number of intra-op threads.",
        f"- Median of {reps}+ interleaved repetitions after one warm-up call of each.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    section_main(__doc__, run_section, argv, "two tiny images, a narrow trunk (a smoke run)")


if __name__ == "__main__":
    main()
