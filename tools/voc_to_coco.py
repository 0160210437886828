"""Convert a Pascal VOC split (XML annotations) to a COCO json for ``CocoDetection``.

    python tools/voc_to_coco.py VOCdevkit/VOC2007 --split trainval --output voc07_trainval.json

Images stay where they are: use ``VOC_ROOT/JPEGImages`` as the images folder. Difficult objects become
``iscrowd: 1`` (ignored in training and evaluation) unless ``--difficult drop|keep``.
"""

from __future__ import annotations

import argparse

from rcnn.data.voc import VOC_CLASSES, voc_to_coco
from rcnn.tasks import cli
from rcnn.utils.io import atomic_write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("voc_root", help="folder with Annotations/, ImageSets/Main/ and JPEGImages/")
    parser.add_argument("--split", default="trainval", help="image set name (ImageSets/Main/<split>.txt)")
    parser.add_argument("--output", required=True, help="COCO json to write")
    parser.add_argument(
        "--classes", default="", help="comma-separated class names (default: the 20 VOC ones)"
    )
    parser.add_argument("--difficult", choices=["crowd", "drop", "keep"], default="crowd")
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    return cli.run_tool(lambda: convert(args), debug=args.debug)


def convert(args: argparse.Namespace) -> None:
    """Write the COCO json of ``args``; a ``DatasetError`` names the bad file (exit 2)."""
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] or list(VOC_CLASSES)
    data = voc_to_coco(args.voc_root, args.split, classes, difficult=args.difficult)
    atomic_write_json(data, args.output, indent=None)
    print(f"{len(data['images'])} images, {len(data['annotations'])} objects -> {args.output}")


if __name__ == "__main__":
    raise SystemExit(main())
