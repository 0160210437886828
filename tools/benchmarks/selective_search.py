"""Selective search benchmark: speed and proposal quality, optionally against OpenCV-contrib.

Speed: seconds per image and box counts on scikit-image's bundled photos (astronaut, coffee, chelsea,
rocket, coins, camera), single thread. Quality: recall at IoU 0.5 / 0.7 and MABO on three annotated sets:
*real photos*, those photos with boxes drawn by hand around their objects
(:mod:`tools.benchmarks.real_photos`; scored on the timed runs' proposals, so the set's seconds per image
are the speed table's), *composites*, the first four photos with flat-coloured, textured and photo-patch
shapes pasted at known places (see :mod:`tools.benchmarks.composites`), and the project's *synthetic*
detection set (:func:`rcnn.data.synthetic.make_detection_dataset`, validation split, occluded shapes over
textures).

OpenCV-contrib is never imported here: with ``--opencv-python PATH`` (the python of a separate virtual
environment that has ``opencv-contrib-python-headless``), a worker process running
``cv2.ximgproc.segmentation.createSelectiveSearchSegmentation`` is started with that interpreter; it receives
the same images as ``.npy`` files and returns boxes as ``.npy``. The two sides are timed alternately, image
by image (the order flips every repeat), and the per-image median over the repeats is reported, so load
from other processes hits both alike.

    python tools/benchmark.py --sections selective_search [--quick] [--opencv-python PATH]

writes it (with the proposal cache's throughput) into ``docs/benchmarks.md``; from the repository root,

    python -m tools.benchmarks.selective_search --mode fast --repeats 3 --opencv-python /path/to/python

prints this part alone (its tables, then the environment; ``--json`` / ``--markdown`` write them to files).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import skimage

from rcnn.data.synthetic import make_detection_dataset
from rcnn.proposals.recall import mabo, proposal_recall
from rcnn.proposals.selective_search import selective_search
from tools.benchmarks.composites import load_photo, make_composites
from tools.benchmarks.real_photos import load_real_photos, read_fixture

PHOTOS = tuple(entry["function"] for entry in read_fixture()["photos"])  # the hand-annotated photos
COMPOSITE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
REAL_SET = "real photos"

# Executed by the OpenCV environment's interpreter, never imported by this package.
_OPENCV_WORKER = r"""
import json, sys, time
import numpy as np
import cv2
cv2.setNumThreads(1)
print(json.dumps({"ready": True, "opencv": cv2.__version__}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    rgb = np.load(req["image"])
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    start = time.perf_counter()
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(bgr)
    if req["mode"] == "fast":
        ss.switchToSelectiveSearchFast()
    elif req["mode"] == "quality":
        ss.switchToSelectiveSearchQuality()
    else:
        ss.switchToSingleStrategy()
    rects = ss.process()
    seconds = time.perf_counter() - start
    rects = np.asarray(rects, dtype=np.float32).reshape(-1, 4)
    boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
    np.save(req["out"], boxes)
    print(json.dumps({"seconds": seconds, "count": int(len(boxes))}), flush=True)
"""


class OpenCVWorker:
    """A persistent OpenCV-contrib selective search process in another Python environment."""

    def __init__(self, python: str, workdir: Path) -> None:
        self.workdir = workdir
        script = workdir / "opencv_selective_search_worker.py"
        script.write_text(_OPENCV_WORKER)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [python, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        hello = json.loads(self._readline())
        self.version = str(hello.get("opencv", "?"))
        self._count = 0

    def _readline(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"OpenCV worker exited with code {self.proc.poll()}")
        return line

    def __call__(self, image: np.ndarray, mode: str) -> tuple[np.ndarray, float]:
        """(H, W, 3) uint8 RGB -> (boxes (N, 4) float32 xyxy exclusive ends, seconds)."""
        self._count += 1
        src = self.workdir / f"in_{self._count}.npy"
        out = self.workdir / f"out_{self._count}.npy"
        np.save(src, image)
        self.proc.stdin.write(json.dumps({"image": str(src), "out": str(out), "mode": mode}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self._readline())
        boxes = np.load(out)
        src.unlink()
        out.unlink()
        return boxes, float(reply["seconds"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def _ours(image: np.ndarray, mode: str, seed: int, options: dict) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    boxes = selective_search(image, mode, seed=seed, **options)
    return boxes, time.perf_counter() - start


def synthetic_set(
    num_images: int, image_size: int, seed: int, workdir: Path
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Validation images of the synthetic detection set: [(image (H, W, 3) uint8 RGB, boxes (G, 4) xyxy)]."""

    paths = make_detection_dataset(workdir / "synthetic", 0, num_images, image_size, seed=seed, workers=1)
    with open(paths["val_annotations"]) as f:
        coco = json.load(f)
    boxes: dict[int, list] = {img["id"]: [] for img in coco["images"]}
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        boxes[ann["image_id"]].append([x, y, x + w, y + h])
    out = []
    for img in coco["images"]:
        bgr = cv2.imread(str(Path(paths["val_images"]) / img["file_name"]), cv2.IMREAD_COLOR)
        gt = np.asarray(boxes[img["id"]], dtype=np.float32).reshape(-1, 4)
        out.append((np.ascontiguousarray(bgr[:, :, ::-1]), gt))
    return out


def _quality(proposals: list[np.ndarray], gts: list[np.ndarray], top: int | None) -> dict[str, float]:
    props = proposals if top is None else [p[:top] for p in proposals]
    return {
        "recall@0.5": proposal_recall(props, gts, 0.5),
        "recall@0.7": proposal_recall(props, gts, 0.7),
        "mabo": mabo(props, gts),
        "boxes": float(np.mean([len(p) for p in props])),
    }


def run(
    mode: str = "fast",
    *,
    photos: Sequence[str] = PHOTOS,
    real_photos: bool = True,
    composite_photos: Sequence[str] = COMPOSITE_PHOTOS,
    repeats: int = 3,
    opencv_python: str | None = None,
    seed: int = 0,
    composites_per_photo: int = 3,
    synthetic_images: int = 24,
    synthetic_size: int = 512,
    n_jobs: int = 1,
    variants: dict[str, dict] | None = None,
    tops: Sequence[int] = (500, 1000),
    log=print,
) -> dict:
    """Run the benchmark.

    ``photos`` are timed; with ``real_photos``, those of them with hand-drawn boxes form the ``real photos``
    set, scored on the timed runs' proposals (its ``annotated`` entry adds ``"seconds"``: per method, the
    mean over its photos of the per-photo medians). The composites are made from ``composite_photos``.

    Returns ``{"speed": {photo: {method: {"seconds", "runs", "boxes"}, "shape"}}, "quality": {set: {method:
    {"all" | "top<N>": {"recall@0.5", "recall@0.7", "mabo", "boxes"}}}}, "annotated": {set: {"images",
    "boxes"}}, "env": {...}}`` with methods ``rcnn``, ``rcnn <name>`` for each of ``variants`` (extra
    :func:`selective_search` options on top of ``mode``) and, given ``opencv_python``, ``opencv``.
    """
    cv2.setNumThreads(1)
    ours = {"rcnn": {"n_jobs": n_jobs}}
    ours.update({f"rcnn {name}": {"n_jobs": n_jobs, **opts} for name, opts in (variants or {}).items()})
    methods = list(ours) + (["opencv"] if opencv_python else [])
    result: dict = {"mode": mode, "repeats": repeats, "seed": seed, "n_jobs": n_jobs, "methods": methods}
    result["variants"] = {name: {k: str(v) for k, v in opts.items()} for name, opts in ours.items()}
    result.update(speed={}, quality={}, annotated={})
    with tempfile.TemporaryDirectory() as tmp:
        worker = OpenCVWorker(opencv_python, Path(tmp)) if opencv_python else None
        try:
            run_one = {name: (lambda im, o=opts: _ours(im, mode, seed, o)) for name, opts in ours.items()}
            if worker is not None:
                run_one["opencv"] = lambda im: worker(im, mode)
            annotated = [entry["function"] for entry in read_fixture()["photos"]]
            real = load_real_photos([n for n in photos if n in annotated]) if real_photos else []
            images = {name: load_photo(name) for name in photos}
            images.update({r.name: r.image for r in real})
            # One-off start-up out of the timings, as the OpenCV worker imports cv2 before its first image:
            # numba compiles (or loads from its cache) the segmentation kernels on their first call.
            for name in ours:
                run_one[name](np.ascontiguousarray(images[photos[0]][:64, :64]))
            times: dict[str, dict[str, list[float]]] = {n: {m: [] for m in methods} for n in photos}
            last: dict[str, dict[str, np.ndarray]] = {n: {} for n in photos}
            for rep in range(repeats):
                order = methods if rep % 2 == 0 else methods[::-1]
                for name, image in images.items():
                    for method in order:
                        boxes, seconds = run_one[method](image)
                        times[name][method].append(seconds)
                        last[name][method] = boxes
                        log(f"[{rep + 1}/{repeats}] {name} {method}: {len(boxes)} boxes, {seconds:.3f} s")
            for name in photos:
                row: dict = {"shape": list(images[name].shape[:2])}
                for m in methods:
                    row[m] = {"seconds": float(np.median(times[name][m])), "runs": times[name][m]}
                    row[m]["boxes"] = len(last[name][m])
                result["speed"][name] = row
            if real:
                gts = [r.boxes for r in real]
                seconds = {
                    m: float(np.mean([result["speed"][r.name][m]["seconds"] for r in real])) for m in methods
                }
                result["annotated"][REAL_SET] = {
                    "images": len(real),
                    "boxes": int(sum(len(g) for g in gts)),
                    "seconds": seconds,
                }
                result["quality"][REAL_SET] = {}
                for method in methods:
                    props = [last[r.name][method] for r in real]
                    q = {"all": _quality(props, gts, None)}
                    q.update({f"top{top}": _quality(props, gts, top) for top in tops})
                    result["quality"][REAL_SET][method] = q
                    log(f"{REAL_SET} {method}: {q['all']}")

            sets = {}
            if composites_per_photo > 0:
                comps = make_composites(composite_photos, per_photo=composites_per_photo, seed=seed)
                sets["composites"] = [(c.image, c.boxes) for c in comps]
            if synthetic_images > 0:
                sets["synthetic"] = synthetic_set(synthetic_images, synthetic_size, seed, Path(tmp))
            for set_name, items in sets.items():
                gts = [gt for _, gt in items]
                result["annotated"][set_name] = {"images": len(items), "boxes": int(sum(len(g) for g in gts))}
                result["quality"][set_name] = {}
                for method in methods:
                    props = [run_one[method](image)[0] for image, _ in items]
                    q = {"all": _quality(props, gts, None)}
                    q.update({f"top{top}": _quality(props, gts, top) for top in tops})
                    result["quality"][set_name][method] = q
                    log(f"{set_name} {method}: {q['all']}")
        finally:
            if worker is not None:
                worker.close()
    result["env"] = _environment(worker.version if worker is not None else None)
    return result


def _environment(opencv_contrib: str | None) -> dict:

    cpu = platform.processor() or "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-image": skimage.__version__,
        "opencv (rcnn side)": cv2.__version__,
        "opencv-contrib (reference side)": opencv_contrib,
        "date": time.strftime("%Y-%m-%d"),
    }


def to_markdown(result: dict) -> str:
    """Tables of a :func:`run` result."""
    methods = result["methods"]
    lines = [f"Mode `{result['mode']}`, median of {result['repeats']} runs per image, one thread.", ""]
    ratios = [m for m in methods if m != "opencv"] if "opencv" in methods else []
    head = ["image"] + [f"{m} {what}" for m in methods for what in ("boxes", "s")]
    head += [f"{m} / opencv time" for m in ratios]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, row in result["speed"].items():
        h, w = row["shape"]
        cells = [f"{name} {h}x{w}"]
        for m in methods:
            cells += [str(row[m]["boxes"]), f"{row[m]['seconds']:.2f}"]
        cells += [f"{row[m]['seconds'] / row['opencv']['seconds']:.2f}" for m in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    for set_name, per_method in result["quality"].items():
        ann = result["annotated"][set_name]
        seconds = ann.get("seconds")  # the real photos: the speed table's runs
        head = ["method", "proposals", "mean boxes", "recall@0.5", "recall@0.7", "MABO"]
        if seconds:
            head += ["s / image"] + (["time / opencv"] if "opencv" in seconds else [])
        made = " (drawn by hand)" if set_name == REAL_SET else ""
        lines += [
            "",
            f"Annotated set `{set_name}`: {ann['images']} images, {ann['boxes']} ground-truth boxes{made}.",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for m, rows in per_method.items():
            for key, q in rows.items():
                label = "all" if key == "all" else f"first {key[3:]}"
                cells = [m, label, f"{q['boxes']:.0f}"]
                cells += [f"{q[k]:.3f}" for k in ("recall@0.5", "recall@0.7", "mabo")]
                if seconds:
                    timed = key == "all"
                    cells.append(f"{seconds[m]:.2f}" if timed else "")
                    if "opencv" in seconds:
                        cells.append(f"{seconds[m] / seconds['opencv']:.2f}" if timed else "")
                lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", default="fast", choices=("single", "fast", "quality"))
    parser.add_argument("--photos", nargs="+", default=list(PHOTOS))
    parser.add_argument("--composite-photos", nargs="+", default=list(COMPOSITE_PHOTOS))
    parser.add_argument("--no-real-photos", action="store_true", help="skip the hand-annotated set")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--opencv-python", default=None, help="python of an environment with opencv-contrib")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--composites-per-photo", type=int, default=3)
    parser.add_argument("--synthetic-images", type=int, default=24)
    parser.add_argument("--synthetic-size", type=int, default=512)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument(
        "--variant",
        nargs=3,
        action="append",
        default=[],
        metavar=("NAME", "K_VALUES", "SEGMENT_MIN_SIZE"),
        help="also time '--mode' with other k values (comma separated) and segmentation minimum size "
        "(pixels or 'k'), e.g. --variant paper-k 50,100 k",
    )
    parser.add_argument("--json", default=None, help="write the raw result here")
    parser.add_argument("--markdown", default=None, help="write the tables here")
    args = parser.parse_args(argv)
    result = run(
        args.mode,
        photos=args.photos,
        real_photos=not args.no_real_photos,
        composite_photos=args.composite_photos,
        repeats=args.repeats,
        opencv_python=args.opencv_python,
        seed=args.seed,
        composites_per_photo=args.composites_per_photo,
        synthetic_images=args.synthetic_images,
        synthetic_size=args.synthetic_size,
        n_jobs=args.n_jobs,
        variants={
            name: {
                "k_values": tuple(float(k) for k in ks.split(",")),
                "segment_min_size": ms if ms == "k" else int(ms),
            }
            for name, ks, ms in args.variant
        },
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
    )
    text = to_markdown(result)
    print(text)
    print(json.dumps(result["env"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
