"""Selective search over the images of a COCO split into a :class:`~rcnn.proposals.cache.ProposalCache`:
the per-image worker and the process-pool driver used by ``tools/compute_proposals.py``.

The worker lives in the package (not in the tool script) so the process pool pickles it by its importable
module path."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from rcnn.data.errors import DatasetError
from rcnn.data.image import read_image

from .cache import CODE_VERSION, ProposalCache
from .selective_search import PRESETS, selective_search

__all__ = ["compute_missing", "default_workers", "search_image", "search_params"]


def search_params(proposals_cfg: Any) -> dict[str, Any]:
    """The parameters recorded in the cache's ``params.json`` (``cfg.proposals`` without ``workers``)."""
    p = proposals_cfg
    if p.mode not in PRESETS:
        raise ValueError(f"proposals.mode={p.mode!r}; expected one of {tuple(PRESETS)}")
    for key in ("max_boxes", "min_size", "resize_to"):
        if getattr(p, key) < 0:
            raise ValueError(f"proposals.{key} must be >= 0, got {getattr(p, key)}")
    return {
        "method": "selective_search",
        "mode": p.mode,
        "seed": int(p.seed),
        "min_size": float(p.min_size),
        "max_boxes": int(p.max_boxes),
        "resize_to": int(p.resize_to),
        "resize_side": "longer",
        "code_version": CODE_VERSION,
    }


def search_image(path: str, image_id: int, size: tuple[int, int], params: dict[str, Any]):
    """Selective search on one image file -> ``(image_id, boxes (P, 4) float32, seconds)``.

    size: (height, width) from the annotation file; a file of another size is an error naming it."""
    start = time.perf_counter()
    image = read_image(path, image_id)
    if image.shape[:2] != tuple(size):
        raise DatasetError(
            f"image is {image.shape[1]}x{image.shape[0]} (WxH) but the annotation file says "
            f"{size[1]}x{size[0]}",
            file=path,
            image_id=image_id,
        )
    boxes = selective_search(
        image,
        params["mode"],
        seed=params["seed"],
        min_size=params["min_size"],
        max_boxes=params["max_boxes"] or None,
        resize_to=params["resize_to"] or None,
        resize_side=params["resize_side"],
    )
    return image_id, boxes, time.perf_counter() - start


def _init_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    cv2.setNumThreads(1)


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def compute_missing(
    dataset, cache: ProposalCache, params: dict[str, Any], workers: int, *, progress: bool = True
) -> list[float]:
    """Compute and store the proposals of the images of ``dataset`` that ``cache`` lacks, with
    ``workers`` processes (1: in this process). Each image is stored as soon as it is done. Returns the
    seconds each computed image took."""
    index = {image_id: i for i, image_id in enumerate(dataset.ids)}
    todo = cache.missing(dataset.ids)
    jobs = []
    for image_id in todo:
        info = dataset.image_info(index[image_id])
        jobs.append((dataset.image_path(index[image_id]), image_id, (info["height"], info["width"]), params))
    seconds: list[float] = []
    bar = tqdm(total=len(jobs), desc="selective search", unit="img", disable=not progress, dynamic_ncols=True)

    def store(result: tuple[int, np.ndarray, float]) -> None:
        image_id, boxes, took = result
        cache.put(image_id, boxes)
        seconds.append(took)
        bar.update(1)

    try:
        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                store(search_image(*job))
            return seconds
        # forkserver, not fork: a worker forked from a process whose OpenCV / OpenMP thread pools are
        # running (e.g. after writing images with cv2) can deadlock on their locks in its first call.
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, mp_context=context) as pool:
            pending: set[Future] = set()
            queue = iter(jobs)
            try:
                while True:
                    for job in queue:  # keep a few tasks per worker in flight, not the whole split
                        pending.add(pool.submit(search_image, *job))
                        if len(pending) >= 4 * workers:
                            break
                    if not pending:
                        break
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        store(future.result())
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return seconds
    finally:
        bar.close()
