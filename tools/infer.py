"""Run a trained detector on images: boxes drawn on pictures and a COCO-style JSON out.

    python tools/infer.py --config configs/faster_rcnn/synthetic_resnet18.yaml \
        --checkpoint outputs/quickstart/detector/model_final.pth \
        --input 'datasets/synthetic/detection/val/*.png' --output outputs/quickstart/infer

Writes ``OUTPUT/detections.json`` (COCO results format: ``image_id`` = index in the input list,
``file_name``, ``category_id`` of the training set, ``category_name``, ``bbox`` xywh in file pixels,
``score``) and ``OUTPUT/<name>.png`` for each image with its boxes, class names and scores drawn.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

import cv2
import numpy as np
import torch
from tqdm import tqdm

from rcnn.config import ConfigError
from rcnn.config_schema import DetectionConfig
from rcnn.data.coco import read_image
from rcnn.data.transforms import build_detection_transforms
from rcnn.tasks import cli
from rcnn.tasks.detection import load_detector, to_original_pixels
from rcnn.utils.comm import select_device
from rcnn.utils.io import atomic_write_json

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(spec: str) -> list[str]:
    """An image file, a folder (its images, sorted) or a glob pattern -> list of paths."""
    if os.path.isdir(spec):
        paths = [os.path.join(spec, f) for f in sorted(os.listdir(spec))]
        paths = [p for p in paths if p.lower().endswith(IMAGE_EXTENSIONS)]
    elif os.path.isfile(spec):
        paths = [spec]
    else:
        paths = sorted(glob.glob(spec))
    if not paths:
        raise FileNotFoundError(f"no images found for --input {spec!r}")
    return paths


def _colour(label: int) -> tuple[int, int, int]:
    rng = np.random.default_rng(label * 7919)
    return tuple(int(c) for c in rng.integers(64, 256, size=3))


def draw_detections(image: np.ndarray, boxes, labels, scores, class_names: list[str]) -> np.ndarray:
    """Draw boxes (D, 4) xyxy with ``name score`` captions on a copy of an RGB uint8 image."""
    out = image.copy()
    for box, label, score in zip(boxes.tolist(), labels.tolist(), scores.tolist()):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        colour = _colour(label)
        name = class_names[label - 1] if 0 < label <= len(class_names) else str(label)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        caption = f"{name} {score:.2f}"
        (tw, th), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
        y_text = max(y1, th + 2)
        cv2.rectangle(out, (x1, y_text - th - 2), (x1 + tw + 2, y_text), colour, -1)
        cv2.putText(out, caption, (x1 + 1, y_text - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True, help="model_final.pth or a training checkpoint")
    parser.add_argument("--input", required=True, help="an image, a folder of images or a glob pattern")
    parser.add_argument("--output", required=True, help="folder for detections.json and the drawn images")
    parser.add_argument("--score-threshold", type=float, default=0.5)
    parser.add_argument("--device", default=None, help="overrides solver.device (auto, cpu, cuda)")
    cli.add_config_arguments(parser)
    return parser


def infer(args: argparse.Namespace) -> None:
    """Detect on every image of ``args.input``; errors are raised for :func:`cli.run_tool`."""
    cfg = cli.load_tool_config(args, DetectionConfig)
    paths = list_images(args.input)
    device = select_device(args.device or cfg.solver.device)
    model, meta = load_detector(cfg, args.checkpoint, device)
    if model.needs_proposals:
        raise ConfigError(
            f"tools/infer.py needs a detector with its own proposals; model.type is {cfg.model.type}"
        )
    class_names = meta.get("class_names", [])
    label_to_category = {int(k): int(v) for k, v in meta.get("label_to_category", {}).items()}
    transform = build_detection_transforms(False, [cfg.test.min_size], cfg.test.max_size)
    empty = {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros((0,), np.int64)}

    os.makedirs(args.output, exist_ok=True)
    results = []
    with torch.inference_mode():
        for index, path in enumerate(tqdm(paths, desc="infer", dynamic_ncols=True)):
            image = read_image(path)
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
            name = os.path.splitext(os.path.basename(path))[0] + ".png"
            cv2.imwrite(os.path.join(args.output, name), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
    out_json = atomic_write_json(results, os.path.join(args.output, "detections.json"), indent=None)
    print(f"{len(results)} detections on {len(paths)} images -> {out_json}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return cli.run_tool(lambda: infer(args), debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
