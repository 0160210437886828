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
from tools.benchmarks.common import command_line, markdown_table, measured_on, measuring, section_main
from tools.benchmarks.detector import time_interleaved

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")
NUM_CLASSES = 9
FULL = {"images": 4, "reps": 5}
QUICK = {"images": 2, "reps": 1, "size": 64, "width": 8}  # a narrower trunk on small images


def _same(a: dict, b: dict) -> bool:
    if len(a["scores"]) != len(b["scores"]) or not torch.equal(a["labels"], b["labels"]):
        return False
    boxes_close = bool((a["boxes"] - b["boxes"]).abs().max() <= 1e-2) if len(a["scores"]) else True
    scores_close = bool((a["scores"] - b["scores"]).abs().max() <= 1e-4) if len(a["scores"]) else True
    return boxes_close and scores_close


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
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, os.path.join(tmp, "model.onnx"), example_size=(height, width))
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
                device=device,
            )
    n = len(images)
    eager_ips, onnx_ips = n / timed["eager"][0], n / timed["onnxruntime"][0]
    header = ["model", "image", "images", "detections", "eager images/s", "ONNX Runtime images/s",
              "ONNX Runtime / eager", "same detections"]  # fmt: skip
    row = [
        f"Faster R-CNN, {cfg.model.backbone.name} ({os.path.basename(CONFIG)})",
        f"{height}x{width}",
        str(n),
        str(detections),
        f"{eager_ips:.2f}",
        f"{onnx_ips:.2f}",
        f"{onnx_ips / eager_ips:.2f}x",
        "yes" if same else "NO",
    ]
    command = command_line(
        "tools.benchmarks.onnx_inference", device=device, quick=quick, threads=threads, reps=reps
    )
    lines = ["## ONNX Runtime against eager inference", ""]
    lines += markdown_table(header, [row])
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
