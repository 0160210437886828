"""Selective search (or a trained RPN's) proposals for every image of a dataset split, cached for Fast
R-CNN and R-CNN.

    python tools/compute_proposals.py --config configs/fast_rcnn/synthetic_resnet18.yaml   # train and val
    python tools/compute_proposals.py --config FILE --split val --workers 2 proposals.mode=quality
    python tools/compute_proposals.py --config FILE --split val --evaluate PATH    # recall of any proposals
    python tools/compute_proposals.py --method rpn --config configs/faster_rcnn/synthetic_resnet18.yaml \
        --checkpoint outputs/faster_rcnn_synthetic/model_final.pth --output outputs/proposals_rpn

Runs :func:`rcnn.proposals.selective_search` (the ``proposals`` section of the config: ``mode``,
``max_boxes``, ``min_size``, ``resize_to``, ``seed``, ``workers``) over ALL images of the split's COCO json
(``data.train_images/annotations``, ``data.val_images/annotations``; images without annotations too) in a
process pool, and writes one ``<image_id>.npy`` per image ((P, 4) float32 x1y1x2y2 in the pixels of the
file, best ranked first) plus ``params.json`` into the split's folder (:mod:`rcnn.proposals.cache`):

* the folder is ``--output DIR/<split>`` when given; otherwise the config's ``data.<split>_proposals``
  when that names a folder; otherwise ``<output.dir>/proposals/<split>``;
* an interrupted run (Ctrl-C, a crash) keeps every finished image: running the same command again computes
  only the missing ones;
* a folder made with other parameters is refused with the differing keys named, never mixed;
* at the end the proposals are scored against the split's ground truth (non-crowd boxes): recall at IoU
  0.5 and 0.7, MABO (mean average best overlap, averaged over classes), the same for the best-ranked
  100 / 300 / 1000 / 2000 boxes, and boxes per image; written to ``summary.json`` in the folder.

``--method rpn --checkpoint C`` runs the RPN of the Faster R-CNN of ``--config`` with the weights of ``C``
instead (:mod:`rcnn.tasks.rpn_proposals`: the test scale, ``model.rpn.nms_thresh`` and
``pre_nms_top_n_test``, the ``proposals.max_boxes`` best by objectness; on ``--device``), into the same
cache format, with the checkpoint's SHA-256 in ``params.json``. Fast R-CNN then trains on RPN proposals
(step 2 of the Faster R-CNN paper's alternating training): ``tools/train_detector.py --config
configs/fast_rcnn/... data.train_proposals=DIR/train data.val_proposals=DIR/val``.

The folder is what ``data.train_proposals`` / ``data.val_proposals`` expect (the override to use is
printed). Proposals made elsewhere (e.g. the selective search boxes released with Fast R-CNN, converted)
can be used the same way: a folder of ``<image_id>.npy`` or one ``.npz`` whose key ``str(image_id)`` holds
each image's (P, 4) x1y1x2y2 array in file pixels; ``--evaluate PATH`` scores such a file.

Exit status (:mod:`rcnn.tasks.cli`): 0 when done; 2 for an unreadable image or annotation file, a bad
config or a cache folder made with other parameters; 130 when interrupted (re-run to continue).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from rcnn.config import ConfigError
from rcnn.config_schema import DetectionConfig
from rcnn.data.coco import CocoDetection
from rcnn.proposals.cache import ProposalCache, ProposalsReader
from rcnn.proposals.compute import compute_missing, default_workers, search_params
from rcnn.proposals.recall import best_overlaps, mabo_of_best, recall_of_best
from rcnn.tasks import cli
from rcnn.tasks.detection import load_detector
from rcnn.tasks.rpn_proposals import compute_rpn_missing, rpn_dataset, rpn_params
from rcnn.tasks.tool_args import add_device_argument, with_device
from rcnn.utils.comm import select_device

SPLITS = ("train", "val")
TOP_N = (100, 300, 1000, 2000)


def _scores(best: np.ndarray, classes: np.ndarray) -> dict[str, float | None]:
    """Recall at 0.5 / 0.7 and MABO (:mod:`rcnn.proposals.recall`) of the pooled best overlaps; None
    without ground truth (JSON has no NaN)."""
    if not best.size:
        return {"recall@0.5": None, "recall@0.7": None, "mabo": None}
    return {
        "recall@0.5": recall_of_best(best, 0.5),
        "recall@0.7": recall_of_best(best, 0.7),
        "mabo": mabo_of_best(best, classes),
    }


def proposal_summary(dataset, proposals_path: str, top_n: tuple[int, ...] = TOP_N) -> dict[str, Any]:
    """Score the proposals of ``proposals_path`` (folder or ``.npz``) for every image of ``dataset``
    against its non-crowd ground truth. MABO is the mean over classes of the mean best overlap
    (Uijlings et al. 2013, Sec. 4.1); recall counts ground-truth boxes (all images pooled)."""
    counts, classes = [], []
    best_all: list[np.ndarray] = []
    best_top: dict[int, list[np.ndarray]] = {n: [] for n in top_n}
    with ProposalsReader(proposals_path) as reader:
        for i, image_id in enumerate(dataset.ids):
            target = dataset.raw_target(i)
            boxes = reader.get(image_id)
            counts.append(len(boxes))
            classes.append(target["labels"])
            best_all.append(best_overlaps(boxes, target["boxes"]))
            for n in top_n:
                best_top[n].append(best_overlaps(boxes[:n], target["boxes"]))
    cls = np.concatenate(classes) if classes else np.zeros(0, np.int64)
    counts_a = np.asarray(counts, dtype=np.float64)
    most = int(counts_a.max()) if counts_a.size else 0
    summary: dict[str, Any] = {
        "num_images": len(counts),
        "num_gt_boxes": int(cls.size),
        "boxes_per_image_mean": float(counts_a.mean()) if counts_a.size else 0.0,
        "boxes_per_image_min": int(counts_a.min()) if counts_a.size else 0,
        "boxes_per_image_max": most,
        "images_without_proposals": int((counts_a == 0).sum()),
        **_scores(np.concatenate(best_all) if best_all else np.zeros(0), cls),
        "top_n": {
            str(n): _scores(np.concatenate(best_top[n]) if best_top[n] else np.zeros(0), cls)
            for n in top_n
            if n < most
        },
    }
    return summary


def format_summary(split: str, summary: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "  n/a" if v is None else f"{100 * v:5.1f}"

    lines = [
        f"{split}: {summary['num_images']} images, {summary['num_gt_boxes']} ground-truth boxes, "
        f"{summary['boxes_per_image_mean']:.1f} proposals per image "
        f"(min {summary['boxes_per_image_min']}, max {summary['boxes_per_image_max']})",
        "  boxes   recall@0.5  recall@0.7  MABO",
    ]
    for name, s in [*summary["top_n"].items(), ("all", summary)]:
        lines.append(
            f"  {name:>5}   {pct(s['recall@0.5'])}%      {pct(s['recall@0.7'])}%      {pct(s['mabo'])}%"
        )
    return "\n".join(lines)


def split_files(cfg: Any, split: str) -> tuple[str, str, str]:
    """(images folder, annotation file, configured proposals path) of ``split``."""
    d = cfg.data
    if split == "train":
        return d.train_images, d.train_annotations, d.train_proposals
    return d.val_images, d.val_annotations, d.val_proposals


def output_folder(cfg: Any, split: str, output: str | None) -> str:
    """Where the proposals of ``split`` go (see the module docstring)."""
    if output:
        return os.path.join(output, split)
    configured = split_files(cfg, split)[2]
    if configured and not configured.endswith(".npz"):
        return configured
    return os.path.join(cfg.output.dir, "proposals", split)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=(*SPLITS, "both"), default="both", help="default: both")
    parser.add_argument("--method", choices=("selective_search", "rpn"), default="selective_search",
                        help="selective search (default), or the RPN of a trained Faster R-CNN")  # fmt: skip
    parser.add_argument("--checkpoint", help="with --method rpn: the Faster R-CNN's weights")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes (default: proposals.workers, 0 = one per core)")  # fmt: skip
    parser.add_argument("--output", help="parent folder of the <split> folders (see above)")
    parser.add_argument("--evaluate", metavar="PATH",
                        help="score an existing proposals folder or .npz on --split instead")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_argument(parser)
    cli.add_config_arguments(parser)
    return parser


def compute(args: argparse.Namespace) -> None:
    """Compute (or with ``--evaluate`` score) the proposals of the splits; errors are raised for
    :func:`cli.run_tool`."""
    cfg = cli.load_tool_config(args, DetectionConfig)
    splits = list(SPLITS) if args.split == "both" else [args.split]
    if args.evaluate:
        images, annotations, _ = split_files(cfg, splits[0])
        try:
            summary = proposal_summary(CocoDetection(images, annotations, filter_empty=False), args.evaluate)
        except KeyError as e:  # an image without proposals in the file: the message names it
            raise FileNotFoundError(e.args[0]) from None
        print(format_summary(splits[0], summary))
        return
    if args.method == "rpn":
        if cfg.model.type != "faster_rcnn":
            raise ConfigError(f"--method rpn needs a Faster R-CNN config (model.type={cfg.model.type})")
        if cfg.proposals.max_boxes < 0:
            raise ConfigError(f"proposals.max_boxes must be >= 0, got {cfg.proposals.max_boxes}")
        device = select_device(cfg.solver.device)
        model, _ = load_detector(cfg, args.checkpoint, device)
        params = rpn_params(cfg, args.checkpoint)
    else:
        try:
            params = search_params(cfg.proposals)
        except ValueError as e:  # a bad proposals.* value
            raise ConfigError(str(e)) from None
        workers = cfg.proposals.workers if args.workers is None else args.workers
        workers = workers if workers > 0 else default_workers()

    folders: dict[str, str] = {}
    for split in splits:
        images, annotations, _ = split_files(cfg, split)
        folder = output_folder(cfg, split, args.output)
        cache = ProposalCache(folder, params)
        if args.method == "rpn":
            dataset = rpn_dataset(cfg, images, annotations)
            todo = len(cache.missing(dataset.ids))
            done = len(dataset.ids) - todo
            print(f"{split}: {len(dataset.ids)} images in {annotations}, {done} already in {folder}, "
                  f"computing {todo} with the RPN on {device}", file=sys.stderr)  # fmt: skip
            seconds = compute_rpn_missing(
                model, dataset, cache, device, max_boxes=params["max_boxes"],
                batch_size=cfg.test.ims_per_batch, progress=not args.no_progress,
            )  # fmt: skip
        else:
            dataset = CocoDetection(images, annotations, filter_empty=False)
            todo = len(cache.missing(dataset.ids))
            print(
                f"{split}: {len(dataset.ids)} images in {annotations}, {len(dataset.ids) - todo} already in "
                f"{folder}, computing {todo} with {min(workers, max(todo, 1))} process(es)",
                file=sys.stderr,
            )
            try:
                seconds = compute_missing(dataset, cache, params, workers, progress=not args.no_progress)
            except KeyboardInterrupt:
                raise KeyboardInterrupt(
                    f"finished images are kept in {folder}; run again to continue"
                ) from None
        summary = proposal_summary(dataset, folder)
        summary["params"] = params
        summary["images_computed_this_run"] = len(seconds)
        summary["seconds_per_image"] = float(np.mean(seconds)) if seconds else None
        cache.write_summary(summary)
        print(format_summary(split, summary))
        folders[split] = folder

    sets = " ".join(f"data.{split}_proposals={folder}" for split, folder in folders.items())
    print(f"proposals ready; train/evaluate with: {sets}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.evaluate and args.split == "both":
        parser.error("--evaluate scores one split: add --split train or --split val")
    if (args.method == "rpn") != bool(args.checkpoint) and not args.evaluate:
        parser.error("--method rpn and --checkpoint go together")
    args.overrides = with_device(args.overrides, args.device)
    return cli.run_tool(lambda: compute(args), debug=args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
