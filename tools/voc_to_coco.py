"""Convert a Pascal VOC split (XML annotations) to a COCO json for ``CocoDetection``.

    python tools/voc_to_coco.py VOCdevkit/VOC2007 --split trainval --output voc07_trainval.json

Images stay where they are: use ``VOC_ROOT/JPEGImages`` as the images folder. Difficult objects become
``iscrowd: 1`` (ignored in training and evaluation) unless ``--difficult drop|keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from rcnn.data.errors import DatasetError
from rcnn.data.voc import VOC_CLASSES, voc_to_coco


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("voc_root", help="folder with Annotations/, ImageSets/Main/ and JPEGImages/")
    parser.add_argument("--split", default="trainval", help="image set name (ImageSets/Main/<split>.txt)")
    parser.add_argument("--output", required=True, help="COCO json to write")
    parser.add_argument(
        "--classes", default="", help="comma-separated class names (default: the 20 VOC ones)"
    )
    parser.add_argument("--difficult", choices=["crowd", "drop", "keep"], default="crowd")
    args = parser.parse_args(argv)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] or list(VOC_CLASSES)
    try:
        data = voc_to_coco(args.voc_root, args.split, classes, difficult=args.difficult)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out_dir = os.path.dirname(os.path.abspath(args.output))
    os.makedirs(out_dir, exist_ok=True)
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, args.output)
    print(f"{len(data['images'])} images, {len(data['annotations'])} objects -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
