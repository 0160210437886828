"""Export a trained Fast or Faster R-CNN to ONNX: one graph from the image tensor to the detections.

    python tools/export.py --config configs/faster_rcnn/synthetic_resnet18.yaml \
        --checkpoint outputs/quickstart/detector/model_final.pth --output outputs/quickstart/model.onnx
    python tools/infer.py --backend onnxruntime --model outputs/quickstart/model.onnx \
        --input 'datasets/synthetic/detection/val/*.png' --output outputs/quickstart/infer_onnx

The graph (:mod:`rcnn.detectors.export`) holds normalisation, padding, the trunk (with its feature
pyramid for an FPN detector), the RPN (anchors, decoding, top-n, NMS; per level with a pyramid), RoI
pooling (from the level of Lin et al.'s eq. 1 with a pyramid), the region head and the per-class
post-processing with NMS. Input
``images`` (N, 3, H, W) float32 RGB 0..255 with a dynamic batch, height and width (H, W at least twice
the feature stride); for Fast R-CNN also ``proposals`` (P, 5) ``[image_index, x1, y1, x2, y2]``.
Outputs ``boxes`` (D, 4) xyxy in the input's pixels, ``labels`` (D,) in 1..K, ``scores`` (D,) and
``image_index`` (D,). The class names, the dataset's category ids and the test size are stored in the
model's metadata for ``tools/infer.py``. Resizing stays outside the graph, in the data transforms.

``--opset`` (default 18), ``--device`` (overrides ``solver.device``: where the graph is traced; the file
runs anywhere). An existing ``--output`` is never written over. Exit status 2 with one ``error:`` line
for a bad config, a missing or unfitting checkpoint, a model that cannot be exported (R-CNN, Soft-NMS),
an existing output, or a missing ``onnx`` / ``onnxscript`` (``pip install -e .[export]``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

import torch

from rcnn.config import ConfigError
from rcnn.config_schema import DetectionConfig
from rcnn.detectors.export import export_onnx
from rcnn.detectors.generalized_rcnn import GeneralizedRCNN
from rcnn.tasks import cli
from rcnn.tasks.detection import load_detector
from rcnn.tasks.tool_args import add_device_argument, with_device
from rcnn.utils.comm import select_device
from rcnn.utils.io import atomic_write_bytes

EXPORT_MODULES = ("onnx", "onnxscript")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="model_final.pth or a training checkpoint")
    parser.add_argument("--output", required=True, help="the ONNX file to write (model.onnx)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset version (default 18)")
    add_device_argument(parser)
    cli.add_config_arguments(parser)
    return parser


def export(args: argparse.Namespace) -> int:
    missing = [name for name in EXPORT_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"ONNX export needs {', '.join(missing)}: pip install -e .[export]")
    cfg = cli.load_tool_config(args, DetectionConfig)
    if os.path.exists(args.output):
        raise ConfigError(f"--output {args.output} exists: choose another file (it is never written over)")
    if cfg.model.type == "rcnn":
        raise ConfigError(
            "model.type rcnn (per-crop features and SVMs) has no ONNX export: use fast_rcnn or faster_rcnn"
        )
    if cfg.model.roi_heads.soft_nms != "none":
        raise ConfigError(
            f"model.roi_heads.soft_nms={cfg.model.roi_heads.soft_nms} cannot be exported: "
            "ONNX export uses hard NMS"
        )
    model, meta = load_detector(cfg, args.checkpoint, select_device(cfg.solver.device))
    assert isinstance(model, GeneralizedRCNN)
    metadata = {
        "class_names": json.dumps(meta.get("class_names", [])),
        "label_to_category": json.dumps({str(k): v for k, v in meta.get("label_to_category", {}).items()}),
        "test_size": json.dumps([cfg.test.min_size, cfg.test.max_size]),
        "model_type": json.dumps(cfg.model.type),
    }
    size = (cfg.test.min_size, cfg.test.max_size)
    with torch.no_grad():  # a complete file or none
        atomic_write_bytes(
            lambda f: export_onnx(model, f, opset=args.opset, example_size=size, metadata=metadata),
            args.output,
        )
    print(f"exported {cfg.model.type} (opset {args.opset}) -> {args.output}", file=sys.stderr)
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.overrides = with_device(args.overrides, args.device)
    return cli.run_tool(lambda: export(args))


if __name__ == "__main__":
    raise SystemExit(main())
