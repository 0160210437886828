"""Felzenszwalb & Huttenlocher's graph-based segmentation, with the graph shared across scales.

P. F. Felzenszwalb and D. P. Huttenlocher, "Efficient Graph-Based Image Segmentation", IJCV 59(2), 2004.

This module reproduces scikit-image's ``skimage.segmentation.felzenszwalb`` (its Cython
``_felzenszwalb_cython``) step by step; its labels match scikit-image's exactly (``np.array_equal``, the
numbering included). The work that does not depend on the scale ``k`` -- the Gaussian smoothing, the
8-connected edge graph, the edge costs and their sort -- is done once per image by
:class:`FelzenszwalbGraph`; :meth:`FelzenszwalbGraph.segment` then runs the union-find passes for one ``k``
and minimum size. Selective search segments each colour space at several k values: one graph serves them all.

The steps, as in scikit-image:

1. the image, ``(H, W, C)``, goes to float64 in ``[0, 1]`` (``skimage.util.img_as_float64``) and is smoothed
   with ``scipy.ndimage.gaussian_filter(image, [sigma, sigma, 0], mode="reflect", cval=0, truncate=4.0)``;
2. edges join pixel ``(y, x)`` to ``(y, x + 1)`` (block "right"), ``(y + 1, x)`` ("down"), ``(y + 1, x + 1)``
   ("down-right"), and ``(y, x + 1)`` to ``(y + 1, x)`` ("up-right"), in that block order, each block in
   raster order of ``(y, x)``; an edge's cost is the Euclidean distance of the two smoothed pixel vectors;
3. the edges are ordered by ``np.argsort(costs)`` (numpy's default kind, not stable): the costs array is
   bitwise scikit-image's and is sorted by the same call, so tied costs come out in the same order;
4. union-find over that order: components ``a`` and ``b`` merge when the edge's cost is below
   ``min(Int(a) + k' / |a|, Int(b) + k' / |b|)``, ``k' = k / 255``, ``Int`` the cost of the component's last
   merging edge (0 for a single pixel), each threshold rounded to float32 as scikit-image's ``cdef float``;
5. a second pass over the same order merges the two sides of every edge where one side has fewer than
   ``min_size`` pixels;
6. components are numbered ``0..N-1`` in raster order of their first pixel (scikit-image's ``np.unique`` of
   the union-find roots, each root being its component's smallest flat pixel index).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import ndimage
from skimage.util import img_as_float64


@njit(cache=True, nogil=True)
def _sorted_edges(
    costs: np.ndarray, order: np.ndarray, height: int, width: int, out_a: np.ndarray, out_b: np.ndarray
) -> np.ndarray:
    """The edges in ``order`` (E,), an index into the concatenated direction blocks: their two pixels' flat
    indices into ``out_a``, ``out_b`` (E,) and their costs, returned (E,)."""
    n_right = height * (width - 1)
    n_down = (height - 1) * width
    n_diag = (height - 1) * (width - 1)
    sorted_costs = np.empty(order.shape[0], dtype=costs.dtype)
    for i in range(order.shape[0]):
        e = order[i]
        sorted_costs[i] = costs[e]
        if e < n_right:  # (y, x + 1) - (y, x)
            y = e // (width - 1)
            p = y * width + e - y * (width - 1)
            out_a[i] = p + 1
            out_b[i] = p
        elif e < n_right + n_down:  # (y + 1, x) - (y, x)
            p = e - n_right
            out_a[i] = p + width
            out_b[i] = p
        elif e < n_right + n_down + n_diag:  # (y + 1, x + 1) - (y, x)
            e -= n_right + n_down
            y = e // (width - 1)
            p = y * width + e - y * (width - 1)
            out_a[i] = p + width + 1
            out_b[i] = p
        else:  # (y, x + 1) - (y + 1, x)
            e -= n_right + n_down + n_diag
            y = e // (width - 1)
            p = y * width + e - y * (width - 1)
            out_a[i] = p + 1
            out_b[i] = p + width
    return sorted_costs


@njit(cache=True, nogil=True)
def _find(parent: np.ndarray, x: int) -> int:
    """Root of ``x``'s tree, halving the path on the way."""
    while parent[x] != x:
        grand = parent[parent[x]]
        parent[x] = grand
        x = grand
    return x


@njit(cache=True, nogil=True)
def _segment(
    edge_a: np.ndarray, edge_b: np.ndarray, costs: np.ndarray, num_pixels: int, scale: float, min_size: int
) -> np.ndarray:
    """Union-find over the sorted edges (E,) for one scale; returns (num_pixels,) int64 labels.

    The partition depends only on the edge order and the merge rule, not on which node becomes a root, so
    the trees are joined by size (the larger component's root stays) with path halving; the final
    numbering by first pixel reproduces scikit-image's. Per root, ``threshold`` holds scikit-image's
    ``Int + k' / size`` already rounded to float32 (its ``cdef float``), computed with the same operations
    when the root is created.
    """
    parent = np.arange(num_pixels).astype(edge_a.dtype)
    size = np.ones(num_pixels, dtype=edge_a.dtype)
    threshold = np.full(num_pixels, np.float32(0.0 + scale / 1), dtype=np.float32)
    num_edges = costs.shape[0]
    for i in range(num_edges):
        r0 = _find(parent, edge_a[i])
        r1 = _find(parent, edge_b[i])
        if r0 == r1:
            continue
        cost = costs[i]
        if cost < np.float64(min(threshold[r0], threshold[r1])):
            if size[r0] < size[r1]:
                r0, r1 = r1, r0
            parent[r1] = r0
            size[r0] += size[r1]
            threshold[r0] = np.float32(cost + scale / size[r0])

    # Components under min_size absorb their neighbour across each remaining edge, in order. Components
    # only grow, so an edge between two pixels of large components never merges: ``small`` marks the pixels
    # whose component may still be small (cleared when a look finds it large) and other edges are skipped.
    if min_size > 1:
        small = np.empty(num_pixels, dtype=np.bool_)
        any_small = False
        for p in range(num_pixels):
            small[p] = size[_find(parent, p)] < min_size
            any_small |= small[p]
        if any_small:
            for i in range(num_edges):
                a = edge_a[i]
                b = edge_b[i]
                if not (small[a] or small[b]):
                    continue
                r0 = _find(parent, a)
                r1 = _find(parent, b)
                large0 = size[r0] >= min_size
                large1 = size[r1] >= min_size
                if r0 != r1 and not (large0 and large1):
                    if size[r0] < size[r1]:
                        r0, r1 = r1, r0
                    parent[r1] = r0
                    size[r0] += size[r1]
                else:
                    small[a] = not large0
                    small[b] = not large1

    labels = np.empty(num_pixels, dtype=np.int64)
    root_label = np.full(num_pixels, -1, dtype=np.int64)
    count = 0
    for p in range(num_pixels):
        r = _find(parent, p)
        if root_label[r] < 0:
            root_label[r] = count
            count += 1
        labels[p] = root_label[r]
    return labels


def _channels_last(image: np.ndarray, channel_axis: int | None) -> np.ndarray:
    """(H, W) or an image with channels on ``channel_axis`` -> (H, W, C)."""
    image = np.asarray(image)
    if channel_axis is None:
        if image.ndim != 2:
            raise ValueError(f"channel_axis=None expects an (H, W) image, got shape {image.shape}")
        return image[:, :, None]
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    return np.moveaxis(image, channel_axis, -1)


class FelzenszwalbGraph:
    """The k-independent part of the segmentation of one image: the edges sorted by cost.

    image: (H, W, C) with the channels on ``channel_axis``, or (H, W) (one channel; ``channel_axis=None``
    requires this), of any dtype ``img_as_float64`` accepts (uint8 in selective search). sigma: the Gaussian
    pre-smoothing, in pixels. Building costs one Gaussian filter and one argsort of the
    ``E = 4HW - 3(H + W) + 2`` edge costs; each :meth:`segment` then costs two union-find passes over them.

    Attributes: ``shape`` (H, W); ``sigma``; ``costs`` (E,) float64, ascending; ``edge_a``, ``edge_b`` (E,)
    int32 (int64 from 2**31 pixels on), the flat pixel indices ``y * W + x`` of each sorted edge's two ends.
    """

    def __init__(self, image: np.ndarray, sigma: float = 0.8, *, channel_axis: int | None = -1) -> None:
        image = img_as_float64(_channels_last(image, channel_axis))
        height, width = image.shape[:2]
        self.shape: tuple[int, int] = (int(height), int(width))
        self.sigma: float = float(sigma)
        smooth = ndimage.gaussian_filter(image, sigma=[sigma, sigma, 0], mode="reflect", cval=0, truncate=4.0)

        # The costs with scikit-image's float operations, so the same bits: per channel (a - b) * (a - b),
        # summed over the channels from the first (numpy's sum over an axis shorter than 8 adds left to
        # right; from 8 channels on, its pairwise order is used through np.sum itself), then sqrt.
        num_edges = 4 * height * width - 3 * (height + width) + 2 if height and width else 0
        costs = np.empty(max(num_edges, 0), dtype=np.float64)
        start = 0
        for a, b in (
            (smooth[:, 1:], smooth[:, : width - 1]),  # right
            (smooth[1:, :], smooth[: height - 1, :]),  # down
            (smooth[1:, 1:], smooth[: height - 1, : width - 1]),  # down-right
            (smooth[1:, : width - 1], smooth[: height - 1, 1:]),  # up-right
        ):
            n = a.shape[0] * a.shape[1]
            out = costs[start : start + n].reshape(a.shape[:2])
            start += n
            diff = a - b
            np.multiply(diff, diff, out=diff)
            if diff.shape[2] < 8:
                out[...] = diff[..., 0]
                for c in range(1, diff.shape[2]):
                    np.add(out, diff[..., c], out=out)
            else:
                np.sum(diff, axis=-1, out=out)
            np.sqrt(out, out=out)

        order = np.argsort(costs)  # numpy's default kind, as scikit-image: the same tie order
        index_dtype = np.int32 if height * width < 2**31 else np.int64
        self.edge_a = np.empty(order.shape[0], dtype=index_dtype)
        self.edge_b = np.empty(order.shape[0], dtype=index_dtype)
        self.costs: np.ndarray = _sorted_edges(costs, order, height, width, self.edge_a, self.edge_b)

    @property
    def num_edges(self) -> int:
        return int(self.costs.shape[0])

    def segment(self, k: float, min_size: int = 20) -> np.ndarray:
        """Segmentation at scale ``k`` (scikit-image's ``scale``), components of at least ``min_size``
        pixels where the image allows -> (H, W) int64 labels ``0..N-1`` numbered in raster order."""
        height, width = self.shape
        labels = _segment(
            self.edge_a, self.edge_b, self.costs, height * width, float(k) / 255.0, int(min_size)
        )
        return labels.reshape(height, width)


def felzenszwalb(
    image: np.ndarray,
    scale: float = 1,
    sigma: float = 0.8,
    min_size: int = 20,
    *,
    channel_axis: int | None = -1,
) -> np.ndarray:
    """Drop-in for ``skimage.segmentation.felzenszwalb`` (same arguments, same labels): image (H, W[, C])
    -> (H, W) int64 labels."""
    return FelzenszwalbGraph(image, sigma, channel_axis=channel_axis).segment(scale, min_size)
