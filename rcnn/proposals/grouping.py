"""Hierarchical grouping of selective search (Uijlings et al., Algorithm 1).

Starting from an over-segmentation (a label image), the two most similar neighbouring regions are merged
until one region remains. Similarity is a sum of up to four terms (section 3.2):

- colour and texture: histogram intersection ``sum_k min(h_i[k], h_j[k])`` of L1-normalised histograms
  (the caller pre-multiplies and concatenates them into one ``features`` matrix, so one intersection
  covers both);
- size: ``1 - (size_i + size_j) / size_im``;
- fill: ``1 - (size_BB_ij - size_i - size_j) / size_im`` with ``BB_ij`` the tight box around both regions.

Pair similarities live in a binary heap with lazy invalidation: a merged region gets a fresh id, its two
children are marked dead, and heap entries that name a dead region are dropped when they surface. A merge
recomputes the new region's similarity to all its neighbours in one vectorised step.

Boxes are ``x1, y1, x2, y2`` in pixels with exclusive ends (a region covering columns 3..7 has
``x1 = 3, x2 = 8``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class InitialRegions:
    """The regions of a label image: sizes (N,) int64, boxes (N, 4) int64 xyxy (exclusive ends) and the
    adjacent pairs (E, 2) int64 with ``pairs[:, 0] < pairs[:, 1]``, sorted."""

    sizes: np.ndarray
    boxes: np.ndarray
    pairs: np.ndarray

    @property
    def num_regions(self) -> int:
        return int(self.sizes.shape[0])


def adjacent_pairs(labels: np.ndarray, num_regions: int | None = None) -> np.ndarray:
    """Pairs of labels that touch horizontally or vertically: labels (H, W) -> (E, 2) int64, a < b, sorted."""
    n = int(labels.max()) + 1 if num_regions is None else int(num_regions)
    lab = labels.astype(np.int64, copy=False)
    keys = []
    for a, b in ((lab[:, :-1], lab[:, 1:]), (lab[:-1, :], lab[1:, :])):
        mask = a != b
        lo, hi = a[mask], b[mask]
        keys.append(np.minimum(lo, hi) * n + np.maximum(lo, hi))
    unique = np.unique(np.concatenate(keys))
    return np.stack([unique // n, unique % n], axis=1)


def initial_regions(labels: np.ndarray) -> InitialRegions:
    """Sizes, boxes and adjacency of a label image (H, W) with labels ``0..N-1``, every label present."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"expected an (H, W) label image, got shape {labels.shape}")
    n = int(labels.max()) + 1
    sizes = np.bincount(labels.reshape(-1), minlength=n).astype(np.int64)
    if (sizes == 0).any():
        raise ValueError("labels must be 0..N-1 with every label present")
    slices = ndimage.find_objects(labels.astype(np.int32) + 1)
    boxes = np.array([(sx.start, sy.start, sx.stop, sy.stop) for sy, sx in slices], dtype=np.int64)
    return InitialRegions(sizes=sizes, boxes=boxes.reshape(n, 4), pairs=adjacent_pairs(labels, n))


def histogram_intersection_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise ``sum_k min(a[i, k], b[i, k])``: (E, D), (E, D) -> (E,) float64, in blocks to bound memory."""
    out = np.empty(a.shape[0], dtype=np.float64)
    step = max(1, (1 << 20) // max(1, a.shape[1]))
    for start in range(0, a.shape[0], step):
        out[start : start + step] = np.minimum(a[start : start + step], b[start : start + step]).sum(axis=1)
    return out


def size_similarity(size_a: np.ndarray, size_b: np.ndarray, image_size: int) -> np.ndarray:
    """``1 - (size_a + size_b) / image_size`` (broadcasting): high for pairs of small regions."""
    return 1.0 - (np.asarray(size_a, dtype=np.float64) + size_b) / float(image_size)


def fill_similarity(
    box_a: np.ndarray, box_b: np.ndarray, size_a: np.ndarray, size_b: np.ndarray, image_size: int
) -> np.ndarray:
    """``1 - (area(BB_ab) - size_a - size_b) / image_size``: boxes (..., 4) xyxy, sizes (...)  -> (...).

    High when the two regions fill their joint bounding box BB_ab (they fit into each other).
    """
    lo = np.minimum(box_a[..., :2], box_b[..., :2])
    hi = np.maximum(box_a[..., 2:], box_b[..., 2:])
    wh = hi - lo
    joint = (wh[..., 0] * wh[..., 1]).astype(np.float64)
    return 1.0 - (joint - size_a - size_b) / float(image_size)


@dataclass
class Hierarchy:
    """Result of hierarchical grouping with N initial regions.

    boxes: (2N-1, 4) int64 xyxy of every region in creation order (the N initial regions, then one per
    merge; the last is the region covering everything reachable). merges: (N-1, 2) int64, the two region
    ids merged into region ``N + m`` at step m. Disconnected adjacency graphs stop early (fewer merges).
    features: (2N-1, D) float32 histograms of every region (None without histogram similarity).
    """

    boxes: np.ndarray
    merges: np.ndarray
    features: np.ndarray | None = None

    @property
    def num_regions(self) -> int:
        return int(self.boxes.shape[0])


def hierarchical_grouping(
    regions: InitialRegions,
    features: np.ndarray | None,
    image_size: int,
    *,
    size_weight: float = 0.0,
    fill_weight: float = 0.0,
) -> Hierarchy:
    """Merge the most similar neighbours until one region remains.

    regions: the initial regions; features: (N, D) float32 non-negative histograms already multiplied by
    their similarity weights (or None / D = 0 for no histogram term); image_size: pixels in the image.
    """
    n = regions.num_regions
    cap = max(2 * n - 1, 1)
    use_hist = features is not None and features.shape[1] > 0
    feats = np.zeros((cap, features.shape[1] if use_hist else 0), dtype=np.float32)
    if use_hist:
        if features.shape[0] != n:
            raise ValueError(f"features has {features.shape[0]} rows for {n} regions")
        feats[:n] = features
    box_list = regions.boxes.tolist() + [None] * (cap - n)
    size_list = regions.sizes.tolist() + [0] * (cap - n)
    im = float(image_size)

    # Initial pairs: all at once.
    pairs = regions.pairs
    left, right = pairs[:, 0], pairs[:, 1]
    sims = np.zeros(len(pairs), dtype=np.float64)
    if use_hist:
        sims += histogram_intersection_rows(feats[left], feats[right])
    if size_weight:
        sims += size_weight * size_similarity(regions.sizes[left], regions.sizes[right], image_size)
    if fill_weight:
        sizes_l, sizes_r = regions.sizes[left], regions.sizes[right]
        boxes_l, boxes_r = regions.boxes[left], regions.boxes[right]
        sims += fill_weight * fill_similarity(boxes_l, boxes_r, sizes_l, sizes_r, image_size)
    heap = list(zip((-sims).tolist(), left.tolist(), right.tolist()))
    heapq.heapify(heap)
    neighbours: list[set[int] | None] = [set() for _ in range(n)] + [None] * (cap - n)
    for a, b in pairs.tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)

    alive = bytearray(cap)
    alive[:n] = b"\x01" * n
    merges: list[tuple[int, int]] = []
    new = n
    heappop, heappush = heapq.heappop, heapq.heappush
    while heap:
        _, a, b = heappop(heap)
        if not (alive[a] and alive[b]):
            continue  # stale: one of the pair was merged since the entry was pushed
        t = new
        new += 1
        merges.append((a, b))
        alive[a] = alive[b] = 0
        alive[t] = 1
        sa, sb = size_list[a], size_list[b]
        st = sa + sb
        size_list[t] = st
        ba, bb = box_list[a], box_list[b]
        x1, y1 = min(ba[0], bb[0]), min(ba[1], bb[1])
        x2, y2 = max(ba[2], bb[2]), max(ba[3], bb[3])
        box_list[t] = (x1, y1, x2, y2)
        nbrs = neighbours[a] | neighbours[b]
        nbrs.discard(a)
        nbrs.discard(b)
        neighbours[a] = neighbours[b] = None
        neighbours[t] = nbrs
        if use_hist:
            row = feats[t]
            np.multiply(feats[a], sa / st, out=row)
            row += feats[b] * (sb / st)
        if not nbrs:
            continue
        order = list(nbrs)
        for j in order:
            s = neighbours[j]
            s.discard(a)
            s.discard(b)
            s.add(t)
        # Few neighbours: the scalar terms are cheaper in Python than as numpy calls.
        if use_hist:
            hist = np.minimum(feats[order], feats[t]).sum(axis=1).tolist()
        else:
            hist = [0.0] * len(order)
        for j, sim in zip(order, hist):
            sj = size_list[j]
            if size_weight:
                sim += size_weight * (1.0 - (st + sj) / im)
            if fill_weight:
                bj = box_list[j]
                joint = (max(x2, bj[2]) - min(x1, bj[0])) * (max(y2, bj[3]) - min(y1, bj[1]))
                sim += fill_weight * (1.0 - (joint - st - sj) / im)
            heappush(heap, (-sim, j, t))

    merges_arr = np.array(merges, dtype=np.int64).reshape(-1, 2)
    boxes = np.array(box_list[:new], dtype=np.int64).reshape(-1, 4)
    return Hierarchy(boxes=boxes, merges=merges_arr, features=feats[:new] if use_hist else None)
