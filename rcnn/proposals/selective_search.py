"""Selective search object proposals (Uijlings et al., "Selective Search for Object Recognition", IJCV 2013).

Pipeline, per *strategy* (colour space x Felzenszwalb scale k x similarity combination):

1. convert the image to the colour space (:mod:`rcnn.proposals.colorspaces`);
2. over-segment it with Felzenszwalb & Huttenlocher's graph segmentation
   (:mod:`rcnn.proposals.felzenszwalb`, which gives exactly ``skimage.segmentation.felzenszwalb``'s labels;
   scale k, sigma 0.8, minimum component size k as in the paper's code, or the preset's own value). The
   smoothing, edge graph and edge sort do not depend on k: they are done once per colour space and shared
   by its k values;
3. group hierarchically (:mod:`rcnn.proposals.grouping`) with colour / texture / size / fill similarity
   (:mod:`rcnn.proposals.features`); every region of the hierarchy is a proposal.

Ranking (section 3.3): in each hierarchy a region's position is 1 for the last (top) region and grows
towards the initial regions; it is multiplied by a uniform random number in [0, 1) from a generator seeded
with ``seed``; all strategies' regions are sorted by that value ascending. Exact duplicates keep their best
rank. The colour space / k pair is a *segmentation*: its histograms are computed once and shared by the
similarity combinations.

Presets (the colour spaces, k values, similarity combinations and the segmentation's minimum component
size; ``C`` colour, ``T`` texture, ``S`` size, ``F`` fill):

| preset  | colour spaces       | k                      | min size | similarities    | strategies |
|---------|---------------------|------------------------|----------|-----------------|------------|
| single  | HSV                 | 100                    | k        | CTSF            | 1          |
| fast    | HSV, Lab            | 100, 200, 400          | 100      | CTSF, TSF, F    | 18         |
| quality | HSV, Lab, rgI, H, I | 50, 100, 150, 300, 450 | k        | CTSF, TSF, F, S | 100        |

``fast`` departs from OpenCV-contrib's ``switchToSelectiveSearchFast`` (k 150, 300, 450; CTSF and TSF),
whose strategies, run here, left a spoon and a cat's nose below IoU 0.7 on the selective-search benchmark's
hand-annotated real photos (``tools/benchmarks/real_photos.json``) and trailed OpenCV's own MABO there.
Lower k values (100, 200, 400) gave the closest boxes to the cup, the spoon and the whole cat; the third
similarity, fill alone (``F``), those to the nose and the cameraman's camera. The smoothing, edge graph
and pixel codes are per colour space, and the fill-only grouping merges no histograms, so the 18 strategies
take about the time of OpenCV's 12 (``docs/benchmarks.md``, row ``rcnn opencv strategies``). It keeps
OpenCV's minimum component size of 100 pixels: with the paper's ``min size = k`` and k up to 450, every
object smaller than ~450 pixels is absorbed into its surroundings before grouping starts (recall at IoU
0.5 on the project's composite benchmark fell from 0.99 to 0.95, measured with OpenCV's k values).
``segment_min_size="k"`` restores the paper's rule.

Boxes are ``(N, 4) float32`` ``x1, y1, x2, y2`` in the input image's pixels with exclusive ends: a region
covering pixel columns 3..7 gives ``x1 = 3, x2 = 8`` (the continuous convention of COCO, where the box width
is ``x2 - x1``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from rcnn.proposals.colorspaces import COLOR_SPACES, convert_color
from rcnn.proposals.features import PixelCodes
from rcnn.proposals.felzenszwalb import FelzenszwalbGraph
from rcnn.proposals.grouping import Hierarchy, hierarchical_grouping, initial_regions

PRESETS: dict[str, dict] = {
    "single": {
        "color_spaces": ("hsv",),
        "k_values": (100,),
        "similarities": ("CTSF",),
        "segment_min_size": "k",
    },
    "fast": {
        "color_spaces": ("hsv", "lab"),
        "k_values": (100, 200, 400),
        "similarities": ("CTSF", "TSF", "F"),
        "segment_min_size": 100,
    },
    "quality": {
        "color_spaces": ("hsv", "lab", "rgi", "h", "i"),
        "k_values": (50, 100, 150, 300, 450),
        "similarities": ("CTSF", "TSF", "F", "S"),
        "segment_min_size": "k",
    },
}


@dataclass(frozen=True)
class Similarity:
    """Weights of the four similarity terms (the paper uses 0 or 1)."""

    color: float = 0.0
    texture: float = 0.0
    size: float = 0.0
    fill: float = 0.0

    @classmethod
    def parse(cls, spec: str | Similarity) -> Similarity:
        """``"CTSF"``, ``"C+T+S+F"``, ``"tsf"``... -> Similarity with weight 1 for each letter."""
        if isinstance(spec, Similarity):
            return spec
        letters = spec.upper().replace("+", "").replace(" ", "")
        unknown = set(letters) - set("CTSF")
        if unknown or not letters or len(set(letters)) != len(letters):
            raise ValueError(f"similarity {spec!r}: expected distinct letters among C, T, S, F")
        return cls(*(float(c in letters) for c in "CTSF"))


def segment(
    image: np.ndarray | FelzenszwalbGraph,
    k: float,
    sigma: float = 0.8,
    min_size: int | str | None = None,
) -> np.ndarray:
    """Felzenszwalb segmentation of an (H, W, C) uint8 image -> (H, W) int64 labels ``0..N-1``.

    ``image`` may instead be the :class:`~rcnn.proposals.felzenszwalb.FelzenszwalbGraph` of the image (built
    with this ``sigma``), shared by several calls with different k. ``min_size`` (minimum component size in
    pixels) defaults to ``k`` (the paper's choice; also ``"k"``). The labels are those of
    ``skimage.segmentation.felzenszwalb(image, scale=k, sigma=sigma, min_size=min_size)``.
    """
    min_size = int(k) if min_size is None or min_size == "k" else int(min_size)
    if isinstance(image, FelzenszwalbGraph):
        if image.sigma != float(sigma):
            raise ValueError(f"the graph was built with sigma={image.sigma}, not {sigma}")
        return image.segment(float(k), min_size)
    return FelzenszwalbGraph(image, sigma).segment(float(k), min_size)


def group_segmentation(
    codes: PixelCodes, labels: np.ndarray, similarities: Sequence[Similarity]
) -> list[Hierarchy]:
    """Run hierarchical grouping once per similarity on one segmentation; labels (H, W) ``0..N-1``."""
    regions = initial_regions(labels)
    need_hist = any(s.color or s.texture for s in similarities)
    if need_hist:
        colour, texture = codes.region_histograms(labels, regions.num_regions)
    out = []
    for sim in similarities:
        parts = []
        if sim.color:
            parts.append(colour * np.float32(sim.color))
        if sim.texture:
            parts.append(texture * np.float32(sim.texture))
        feats = np.concatenate(parts, axis=1) if parts else None
        out.append(
            hierarchical_grouping(regions, feats, labels.size, size_weight=sim.size, fill_weight=sim.fill)
        )
    return out


def _run_color_space(
    image: np.ndarray,
    space: str,
    k_values: Sequence[float],
    similarities: Sequence[Similarity],
    sigma: float,
    segment_min_size: int | str,
) -> list[np.ndarray]:
    """All strategies of one colour space: (2N-1, 4) int64 boxes in creation order per (k, similarity)."""
    converted = convert_color(image, space)
    codes = PixelCodes(converted)
    graph = FelzenszwalbGraph(converted, sigma)  # smoothing, edges and their sort: shared by the k values
    out = []
    for k in k_values:
        labels = segment(graph, k, sigma, segment_min_size)
        out.extend(h.boxes for h in group_segmentation(codes, labels, similarities))
    return out


def rank_boxes(hierarchies: Sequence[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Combine hierarchies (each (R_i, 4) in creation order) into one (M, 4) array sorted by
    position x uniform random number, duplicates removed (the best-ranked copy stays)."""
    if not hierarchies:
        return np.zeros((0, 4), dtype=np.int64)
    boxes = np.concatenate(hierarchies, axis=0)
    position = np.concatenate([np.arange(len(h), 0, -1, dtype=np.float64) for h in hierarchies])
    score = position * rng.random(len(position))
    order = np.argsort(score, kind="stable")
    boxes = boxes[order]
    base = int(boxes.max()) + 1 if len(boxes) else 1
    key = ((boxes[:, 0] * base + boxes[:, 1]) * base + boxes[:, 2]) * base + boxes[:, 3]
    _, first = np.unique(key, return_index=True)  # stable: the first (best-ranked) copy
    return boxes[np.sort(first)]


def _resize(image: np.ndarray, resize_to: int | None, side: str) -> tuple[np.ndarray, float, float]:
    if resize_to is None:
        return image, 1.0, 1.0
    height, width = image.shape[:2]
    if side not in ("shorter", "longer"):
        raise ValueError(f"resize_side must be 'shorter' or 'longer', got {side!r}")
    ref = min(height, width) if side == "shorter" else max(height, width)
    scale = float(resize_to) / ref
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    if (new_w, new_h) == (width, height):
        return image, 1.0, 1.0
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    return resized, width / new_w, height / new_h


def selective_search(
    image: np.ndarray,
    mode: str = "fast",
    *,
    seed: int = 0,
    min_size: float = 0,
    max_boxes: int | None = None,
    resize_to: int | None = None,
    resize_side: str = "longer",
    color_spaces: Sequence[str] | None = None,
    k_values: Sequence[float] | None = None,
    similarities: Sequence[str | Similarity] | None = None,
    sigma: float = 0.8,
    segment_min_size: int | str | None = None,
    n_jobs: int = 1,
) -> np.ndarray:
    """Selective search proposals of one image, best ranked first.

    image: (H, W, 3) uint8 RGB. mode: a preset name (``single``, ``fast``, ``quality``); ``color_spaces``,
    ``k_values`` and ``similarities`` override its parts. seed: seeds the ranking's random numbers (the
    result is a deterministic function of the image, the options and the seed). min_size: boxes narrower or
    shorter than this (input pixels) are dropped. max_boxes: keep at most this many (the best ranked).
    resize_to: run the search on a copy whose ``resize_side`` (``"longer"`` or ``"shorter"``) is this many
    pixels and map the boxes back (the search is not scale invariant: k is in pixels). sigma: Gaussian
    pre-smoothing of the segmentation. segment_min_size: the segmentation's minimum component size in
    pixels, or ``"k"`` for k (default: the preset's). n_jobs: processes for the colour spaces (the result
    does not depend on it).

    Returns (N, 4) float32 ``x1, y1, x2, y2`` in input pixels, exclusive ends.
    """
    if mode not in PRESETS:
        raise ValueError(f"unknown mode {mode!r}; expected one of {tuple(PRESETS)}")
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"expected an (H, W, 3) uint8 RGB image, got {getattr(image, 'shape', None)} "
            f"{getattr(image, 'dtype', None)}"
        )
    preset = PRESETS[mode]
    spaces = tuple(s.lower() for s in (color_spaces or preset["color_spaces"]))
    for s in spaces:
        if s not in COLOR_SPACES:
            raise ValueError(f"unknown colour space {s!r}; expected one of {COLOR_SPACES}")
    ks = tuple(k_values or preset["k_values"])
    sims = tuple(Similarity.parse(s) for s in (similarities or preset["similarities"]))
    work, sx, sy = _resize(np.ascontiguousarray(image), resize_to, resize_side)

    seg_min = preset["segment_min_size"] if segment_min_size is None else segment_min_size
    jobs = [(work, s, ks, sims, sigma, seg_min) for s in spaces]
    if n_jobs > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs))) as pool:
            results = list(pool.map(_run_color_space, *zip(*jobs)))
    else:
        results = [_run_color_space(*job) for job in jobs]
    hierarchies = [boxes for per_space in results for boxes in per_space]

    ranked = rank_boxes(hierarchies, np.random.default_rng(seed)).astype(np.float32)
    if sx != 1.0 or sy != 1.0:
        height, width = image.shape[:2]
        ranked *= np.array([sx, sy, sx, sy], dtype=np.float32)
        np.clip(ranked, 0, np.array([width, height, width, height], dtype=np.float32), out=ranked)
    if min_size > 0:
        keep = ((ranked[:, 2] - ranked[:, 0]) >= min_size) & ((ranked[:, 3] - ranked[:, 1]) >= min_size)
        ranked = ranked[keep]
    if max_boxes is not None:
        ranked = ranked[: max(0, int(max_boxes))]
    return np.ascontiguousarray(ranked, dtype=np.float32)
