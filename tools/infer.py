"""Run a trained detector on images: boxes drawn on pictures and a COCO-style JSON out.

    python tools/infer.py --config configs/faster_rcnn/synthetic_resnet18.yaml \
        --checkpoint outputs/quickstart/detector/model_final.pth \
        --input 'datasets/synthetic/detection/val/*.png' --output outputs/quickstart/infer

Writes ``OUTPUT/detections.json`` (COCO results format: ``image_id`` = index in the input list,
``file_name``, ``category_id`` of the training set, ``category_name``, ``bbox`` xywh in file pixels,
``score``) and, for each image, a copy with its boxes, class names and scores drawn under the input's
file name (``a.jpg`` and ``a.png`` are two outputs; inputs of the same name from different folders get
``_1``, ``_2``, ... added). An output is never written over one of the inputs.

``--input`` takes several images, folders (their files with an image extension) or glob patterns, quoted
or expanded by the shell (``--input val/*.png`` works: a word after ``--input`` or after the options is
an input unless it reads ``section.key=value`` and names no file, then it is a config override).
``--device`` overrides ``solver.device``.

``--backend onnxruntime --model model.onnx`` runs a graph of ``tools/export.py`` in ONNX Runtime
instead, through the same drawing and JSON output; the class names, category ids and test size come
from the model's metadata (``--config`` is optional then: given, its ``test`` size is used)::

    python tools/infer.py --backend onnxruntime --model outputs/quickstart/model.onnx \
        --input 'datasets/synthetic/detection/val/*.png' --output outputs/quickstart/infer_onnx

A file that cannot be read as an image (corrupt, or no image at all) is skipped with one ``warning:``
line and counted; the others are processed. Exit status: 0 when at least one image was read; 2 when none
could be read or none was found, for a bad config, a missing checkpoint or one that does not fit (one
``error:`` line, :mod:`rcnn.tasks.cli`).
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import sys

import cv2
import numpy as np
import torch
from tqdm import tqdm

from rcnn.config import ConfigError
from rcnn.config_schema import DetectionConfig
from rcnn.data.coco import read_image
from rcnn.data.errors import DatasetError
from rcnn.data.transforms import build_detection_transforms
from rcnn.tasks import cli
from rcnn.tasks.detection import load_detector, to_original_pixels
from rcnn.tasks.tool_args import add_device_argument, with_device
from rcnn.utils.comm import select_device
from rcnn.utils.io import atomic_write_json
from rcnn.visualization import draw_detections, write_image

BACKENDS = ("pytorch", "onnxruntime")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
OVERRIDE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+=")  # section.key=value


def split_inputs(inputs: list[str], positionals: list[str]) -> tuple[list[str], list[str]]:
    """(input specs, config overrides) of the words after ``--input`` and the positional words.

    A shell expands an unquoted glob into several words, and the words after the last option land in
    either list: a word that names an existing path, or is not of the form ``section.key=value``, is an
    input; every other word is an override."""
    specs, overrides = [], []
    for word in [*inputs, *positionals]:
        is_override = OVERRIDE.match(word) is not None and not os.path.exists(word)
        (overrides if is_override else specs).append(word)
    return specs, overrides


def list_images(specs: list[str] | str) -> tuple[list[str], list[str]]:
    """(image paths, warnings) of image files, folders (their files with an image extension, sorted)
    and glob patterns, in the order given; a path given twice is listed once. A spec that matches
    nothing is a warning, not an error: :func:`infer` stops only when no image could be read."""
    paths: list[str] = []
    warnings: list[str] = []
    for spec in [specs] if isinstance(specs, str) else specs:
        if os.path.isdir(spec):
            found = [os.path.join(spec, f) for f in sorted(os.listdir(spec))]
            found = [p for p in found if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS)]
        elif os.path.isfile(spec):
            found = [spec]
        else:
            found = sorted(p for p in glob.glob(spec) if os.path.isfile(p))
        if not found:
            warnings.append(f"no images found for --input {spec!r}")
        paths.extend(found)
    unique = list(dict.fromkeys(paths))
    return unique, warnings


def output_names(paths: list[str]) -> list[str]:
    """One output file name per input: its base name (stem and extension kept, so ``a.jpg`` and
    ``a.png`` stay two outputs), with ``_1``, ``_2``, ... added to the stem when two inputs of
    different folders share a name; ``.png`` is appended to an extension OpenCV cannot write.
    ``detections.json`` is never used."""
    taken = {"detections.json"}
    names = []
    for path in paths:
        stem, ext = os.path.splitext(os.path.basename(path))
        if not cv2.haveImageWriter(f"x{ext}"):
            ext += ".png"
        name, n = stem + ext, 0
        while name.lower() in taken:
            n += 1
            name = f"{stem}_{n}{ext}"
        taken.add(name.lower())
        names.append(name)
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=BACKENDS, default="pytorch",
                        help="pytorch (--config, --checkpoint) or onnxruntime (--model)")  # fmt: skip
    parser.add_argument("--checkpoint", help="model_final.pth or a training checkpoint (--backend pytorch)")
    parser.add_argument("--model", help="an ONNX file of tools/export.py (--backend onnxruntime)")
    parser.add_argument("--input", required=True, nargs="+", metavar="PATH",
                        help="images, folders of images or glob patterns (quoted or expanded)")  # fmt: skip
    parser.add_argument("--output", required=True, help="folder for detections.json and the drawn images")
    parser.add_argument("--score-threshold", type=float, default=0.5)
    add_device_argument(parser)
    cli.add_config_arguments(parser, required=False)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments, with the words of ``--input`` and the positional words sorted into input specs and
    config overrides (:func:`split_inputs`); ``--device`` becomes the override ``solver.device``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.backend == "pytorch" and not (args.config and args.checkpoint):
        parser.error("--backend pytorch needs --config and --checkpoint")
    if args.backend == "onnxruntime" and not args.model:
        parser.error("--backend onnxruntime needs --model (an ONNX file of tools/export.py)")
    args.input, overrides = split_inputs(args.input, args.overrides)
    if overrides and not args.config:
        parser.error(f"config overrides need --config: {' '.join(overrides)}")
    args.overrides = with_device(overrides, args.device)
    return args


def _warn(message: str) -> None:
    tqdm.write(f"warning: {message}", file=sys.stderr)


def load_backend(args: argparse.Namespace, cfg: DetectionConfig | None):
    """(detector, its input device, metadata, (test min_size, max_size)) of ``args.backend``: the eager
    model of ``cfg`` (``--config``) / ``--checkpoint``, or an ONNX Runtime session on ``--model``. The
    detector is called as ``detector([image]) -> [detections]``."""
    if args.backend == "onnxruntime":
        if not os.path.isfile(args.model):
            raise FileNotFoundError(f"ONNX model not found: {args.model}")
        if importlib.util.find_spec("onnxruntime") is None:
            raise ConfigError("--backend onnxruntime needs onnxruntime: pip install -e .[export]")
        # optional: onnxruntime, the export extra (pip install -e .[export]), only for this backend
        from rcnn.detectors.onnx_runtime import OnnxDetector

        device = cfg.solver.device if cfg is not None else (args.device or "cpu")
        detector = OnnxDetector(args.model, device=device)
        if detector.needs_proposals:
            raise ConfigError(f"{args.model} is a Fast R-CNN graph (proposals as input): infer needs an RPN")
        meta = detector.metadata
        size = (cfg.test.min_size, cfg.test.max_size) if cfg is not None else tuple(meta["test_size"])
        return detector, torch.device("cpu"), meta, size
    device = select_device(cfg.solver.device)
    model, meta = load_detector(cfg, args.checkpoint, device)
    if model.needs_proposals:
        raise ConfigError(
            f"tools/infer.py needs a detector with its own proposals; model.type is {cfg.model.type}"
        )
    return model, device, meta, (cfg.test.min_size, cfg.test.max_size)


def infer(args: argparse.Namespace) -> int:
    """Detect on every readable image of ``args.input``; an unreadable one is skipped with a warning.
    Returns the exit status: 0, or 2 when no image could be read. Other errors are raised for
    :func:`cli.run_tool`."""
    cfg = cli.load_tool_config(args, DetectionConfig) if args.config else None  # a typo stops first
    paths, warnings = list_images(args.input)
    if not paths:  # one line: the error says what the warnings would
        raise FileNotFoundError(f"no images found for --input {' '.join(map(repr, args.input))}")
    for message in warnings:
        _warn(message)
    names = output_names(paths)
    sources = {os.path.realpath(p) for p in paths}
    for name in names:
        if os.path.realpath(os.path.join(args.output, name)) in sources:
            raise ConfigError(
                f"--output {args.output} would overwrite the input image {name}: choose another folder"
            )
    model, device, meta, (min_size, max_size) = load_backend(args, cfg)
    class_names = meta.get("class_names", [])
    label_to_category = {int(k): int(v) for k, v in meta.get("label_to_category", {}).items()}
    transform = build_detection_transforms(False, [min_size], max_size)
    empty = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros((0,), np.int64)}

    os.makedirs(args.output, exist_ok=True)
    results = []
    skipped = 0
    with torch.inference_mode():
        for index, (path, name) in enumerate(zip(tqdm(paths, desc="infer", dynamic_ncols=True), names)):
            try:
                image = read_image(path)
            except DatasetError as e:
                _warn(f"skipped: {e}")
                skipped += 1
                continue
            tensor, _ = transform(image, dict(empty))
            det = model([tensor.to(device)])[0]
            det = {k: v.cpu() for k, v in det.items()}
            det = to_original_pixels(det, torch.tensor(tensor.shape[-2:]), torch.tensor(image.shape[:2]))
            keep = det["scores"] >= args.score_threshold
            boxes, labels, scores = det["boxes"][keep], det["labels"][keep], det["scores"][keep]
            for box, label, score in zip(boxes.tolist(), labels.tolist(), scores.tolist()):
                results.append(
                    {
                        "image_id": index,
                        "file_name": os.path.basename(path),
                        "category_id": label_to_category.get(label, label),
                        "category_name": class_names[label - 1]
                        if 0 < label <= len(class_names)
                        else str(label),
                        "bbox": [
                            round(box[0], 2),
                            round(box[1], 2),
                            round(box[2] - box[0], 2),
                            round(box[3] - box[1], 2),
                        ],
                        "score": round(score, 4),
                    }
                )
            drawn = draw_detections(image, boxes, labels, scores, class_names)
            write_image(os.path.join(args.output, name), drawn)
    read = len(paths) - skipped
    if not read:
        cli.error(f"none of the {len(paths)} input file(s) could be read as an image")
        return cli.EXIT_USER_ERROR
    out_json = atomic_write_json(results, os.path.join(args.output, "detections.json"), indent=None)
    note = f" ({skipped} unreadable file(s) skipped)" if skipped else ""
    print(f"{len(results)} detections on {read} images{note} -> {out_json}", file=sys.stderr)
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return cli.run_tool(lambda: infer(args), debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
