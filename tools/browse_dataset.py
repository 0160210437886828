"""Look at a detection dataset before training on it: ground truth drawn on images, statistics, anchor fit.

    python tools/browse_dataset.py --config configs/faster_rcnn/synthetic_resnet18.yaml \
        --output outputs/browse [--split train|val] [--after-transforms] [--num N] [key=value ...]

Writes ``OUTPUT/images/<file name>.png`` for the first N images of the split (ground-truth boxes with
class names; with ``--after-transforms`` as the model receives them: resized, flipped, jittered),
``OUTPUT/stats.json`` (images and boxes per class, box sizes, aspect ratios, objects per image and the
anchor-fit report) and ``OUTPUT/stats.png``.

The anchor fit: for ``model.rpn.anchor_sizes`` / ``aspect_ratios`` tiled as the configured RPN tiles them
(at the backbone's stride; with ``model.neck: fpn`` one size per pyramid level, at that level's stride) on
each image at the split's resized size (every ``data.min_size`` for train, ``test.min_size`` for val), the
fraction of ground-truth boxes whose best anchor has IoU >= 0.7, >= 0.5 and < 0.3, by object size, with
a one-line advice. Exit status 2 for a bad config or dataset.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

import backbones
from rcnn.config import ConfigError, load_config
from rcnn.config_schema import DetectionConfig
from rcnn.data.coco import CocoDetection, read_image
from rcnn.data.errors import DatasetError
from rcnn.data.statistics import dataset_statistics
from rcnn.data.transforms import build_detection_transforms, resize_scale, resized_shape
from rcnn.detectors.build import build_detector
from rcnn.modeling.anchor_fit import anchor_fit_report, best_anchor_iou
from rcnn.modeling.anchors import AnchorGenerator, PyramidAnchorGenerator
from rcnn.utils.io import atomic_write_json
from rcnn.visualization import draw_boxes, write_image
from rcnn.visualization.dataset_plots import plot_dataset_statistics


def anchor_generator(cfg: DetectionConfig) -> AnchorGenerator | PyramidAnchorGenerator:
    """The anchors of the configured RPN: the built detector's own generator (FPN: one size per level at
    that level's stride); without an RPN (Fast R-CNN), ``model.rpn``'s anchors at the backbone's stride."""
    model = build_detector(cfg.model, num_classes=1)
    rpn = getattr(model, "proposal_generator", None)
    if rpn is not None:
        return rpn.anchor_generator
    r = cfg.model.rpn
    backbone = backbones.build_backbone(cfg.model.backbone.name, **cfg.model.backbone.options)
    stride = max(spec.stride for spec in backbone.output_shape().values())
    return AnchorGenerator(r.anchor_sizes, r.aspect_ratios, stride, r.anchor_offset, r.round_anchors)


def _strides(generator: AnchorGenerator | PyramidAnchorGenerator) -> list[int]:
    levels = generator.levels if isinstance(generator, PyramidAnchorGenerator) else [generator]
    return [g.stride for g in levels]


def anchor_fit(
    cfg: DetectionConfig,
    dataset: CocoDetection,
    split: str,
    generator: AnchorGenerator | PyramidAnchorGenerator,
) -> dict:
    """The anchor-fit report of ``dataset`` for ``generator``'s anchors (see the module docstring)."""
    r = cfg.model.rpn
    if split == "train":
        scales, max_size = list(cfg.data.min_size), cfg.data.max_size
    else:
        scales, max_size = [cfg.test.min_size], cfg.test.max_size
    ious, sizes, ratios = [], [], []
    for index in range(len(dataset)):
        info = dataset.image_info(index)
        boxes = torch.from_numpy(dataset.raw_target(index)["boxes"])
        for min_size in scales:
            scale = resize_scale(info["height"], info["width"], min_size, max_size)
            shape = resized_shape(info["height"], info["width"], scale)
            b = boxes * scale
            w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
            ok = (w > 0) & (h > 0)
            ious.append(best_anchor_iou(b[ok], shape, generator).numpy())
            sizes.append(torch.sqrt(w[ok] * h[ok]).numpy())
            ratios.append((h[ok] / w[ok]).numpy())
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0)  # noqa: E731
    report = anchor_fit_report(cat(ious), cat(sizes), cat(ratios), r.anchor_sizes, r.aspect_ratios)
    report.update(
        {
            "anchor_sizes": list(r.anchor_sizes),
            "aspect_ratios": list(r.aspect_ratios),
            "strides": _strides(generator),
        }
    )
    report["image_min_sizes"], report["image_max_size"] = scales, max_size
    return report


def draw_samples(cfg: DetectionConfig, dataset: CocoDetection, split: str, out_dir: str, num: int,
                 after_transforms: bool) -> int:  # fmt: skip
    """Write the first ``num`` images of ``dataset`` with their boxes to ``out_dir``; returns how many."""
    d = cfg.data
    if after_transforms and split == "train":
        transform = build_detection_transforms(
            True, d.min_size, d.max_size, hflip_prob=d.hflip_prob, color_jitter=d.color_jitter
        )
        transform.set_random_seed(cfg.solver.seed)
    elif after_transforms:
        transform = build_detection_transforms(False, [cfg.test.min_size], cfg.test.max_size)
    count = min(num, len(dataset))
    for index in tqdm(range(count), desc="browse", dynamic_ncols=True):
        image = read_image(dataset.image_path(index), dataset.ids[index])
        target = dataset.raw_target(index)
        if after_transforms:
            tensor, target = transform(image, target)
            image = tensor.permute(1, 2, 0).numpy().round().clip(0, 255).astype(np.uint8)
            target = {k: v.numpy() for k, v in target.items()}
        drawn = draw_boxes(image, target["boxes"], target["labels"], dataset.class_names)
        name = os.path.splitext(dataset.image_info(index)["file_name"])[0].replace(os.sep, "_") + ".png"
        write_image(os.path.join(out_dir, name), drawn)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", required=True, help="a detection YAML config")
    parser.add_argument("--split", choices=["train", "val"], default="train")
    parser.add_argument("--output", required=True, help="folder for images/, stats.json and stats.png")
    parser.add_argument("--after-transforms", action="store_true", help="draw images as the model sees them")
    parser.add_argument("--num", type=int, default=20, help="images to draw (default 20)")
    parser.add_argument("overrides", nargs="*", help="config overrides, section.key=value")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, DetectionConfig, args.overrides)
        d = cfg.data
        images, annotations = (
            (d.train_images, d.train_annotations)
            if args.split == "train"
            else (d.val_images, d.val_annotations)
        )
        dataset = CocoDetection(images, annotations, filter_empty=False, skip_invalid=d.skip_invalid)
        stats = dataset_statistics(dataset)
        stats["anchor_fit"] = anchor_fit(cfg, dataset, args.split, anchor_generator(cfg))
        drawn = draw_samples(
            cfg, dataset, args.split, os.path.join(args.output, "images"), args.num, args.after_transforms
        )
    except (ConfigError, DatasetError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stats["split"] = args.split
    atomic_write_json(stats, os.path.join(args.output, "stats.json"), indent=2)
    plot_dataset_statistics(stats, os.path.join(args.output, "stats.png"), stats["anchor_fit"])
    fit = stats["anchor_fit"]
    print(f"{stats['images']} images, {stats['boxes']} boxes; {drawn} drawn -> {args.output}")
    print("anchor fit (fraction of boxes whose best anchor has IoU >= 0.7 / >= 0.5 / < 0.3):")
    for row in [{"size": "all", **fit["all"]}, *fit["by_size"]]:
        if row["boxes"]:
            print(f"  {row['size']:>12}: {row['boxes']:6d} boxes  {row['iou>=0.7']:.2f} / "
                  f"{row['iou>=0.5']:.2f} / {row['iou<0.3']:.2f}")  # fmt: skip
    print(f"advice: {fit['advice']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
