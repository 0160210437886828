"""Convert a torchvision ``fasterrcnn_resnet50_fpn`` (v1) checkpoint into an rcnn detector checkpoint.

    python tools/convert_torchvision_detector.py fasterrcnn_resnet50_fpn_coco.pth \
        outputs/tv_fpn/model_final.pth [--annotations datasets/coco/annotations/instances_val2017.json]
    python tools/evaluate.py --config configs/faster_rcnn/resnet50_fpn.yaml \
        --checkpoint outputs/tv_fpn/model_final.pth

The input is a state_dict saved from torchvision (``torch.save(model.state_dict(), path)``) or a checkpoint
of torchvision's detection reference scripts (``{"model": state_dict, ...}``). The output is what
``tools/train_detector.py`` writes (``{"model", "extra": {"metadata"}}``): ``infer.py``, ``evaluate.py``
and ``model_summary.py`` take it with ``configs/faster_rcnn/resnet50_fpn.yaml`` (set ``model.backbone.name``
for another ResNet depth). torchvision's label ``k`` is taken as category id ``k`` (true of its COCO
models); ``--annotations`` names the classes from a COCO file's categories (others: ``class_<k>``). Names
are mapped by :func:`rcnn.detectors.torchvision_weights.convert_torchvision_fpn`.

An existing output is never replaced unless ``--overwrite`` is given. Exit status 0, or 2 with one
``error:`` line for a missing or unreadable file, or a checkpoint that is not such a detector.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rcnn.detectors.torchvision_weights import convert_torchvision_fpn, torchvision_class_count
from rcnn.tasks import cli
from rcnn.tasks.detection import save_detector
from rcnn.utils.io import CheckpointError, load_checkpoint


class _StateDict(dict):
    """A plain dict of tensors with ``state_dict()``, as :func:`save_detector` expects of a model."""

    def state_dict(self) -> dict:
        return dict(self)


def category_names(path: str) -> dict[int, str]:
    """``{category id: name}`` of a COCO annotation file."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    try:
        return {int(c["id"]): str(c["name"]) for c in data["categories"]}
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: no COCO 'categories' list with 'id' and 'name' ({e})") from None


def convert(source: str, target: str, annotations: str | None = None, overwrite: bool = False) -> str:
    """Convert ``source`` into ``target``; returns ``target``."""
    if os.path.exists(target) and not overwrite:
        raise CheckpointError(f"{target} exists; pass --overwrite to replace it")
    state = load_checkpoint(source)
    state = state.get("model", state)
    try:
        weights = convert_torchvision_fpn(state)
    except ValueError as e:
        raise CheckpointError(f"{source}: {e}") from None
    k = torchvision_class_count(state)
    names = category_names(annotations) if annotations else {}
    metadata = {
        "class_names": [names.get(label, f"class_{label}") for label in range(1, k + 1)],
        "label_to_category": {label: label for label in range(1, k + 1)},
    }
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    save_detector(target, _StateDict(weights), metadata, converted_from=os.path.basename(source))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", help="torchvision fasterrcnn_resnet50_fpn state_dict (.pth)")
    parser.add_argument("target", help="rcnn detector checkpoint to write (.pth)")
    parser.add_argument("--annotations", help="COCO annotation file whose categories name the classes")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing target")
    args = parser.parse_args(argv)

    def run() -> None:
        out = convert(args.source, args.target, args.annotations, args.overwrite)
        print(f"wrote {out}")

    return cli.run_tool(run)


if __name__ == "__main__":
    sys.exit(main())
