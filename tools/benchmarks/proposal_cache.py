"""Proposal caching throughput: images/s of ``rcnn.proposals.compute.compute_missing`` (what
``tools/compute_proposals.py`` runs) over a generated synthetic detection split, with 1 worker and with one
worker per core, writing a fresh :class:`~rcnn.proposals.cache.ProposalCache` each time.

The same split is cached once per worker count (the counts alternate over the repetitions); the figure is
the median over repetitions of images / wall-clock seconds of the whole call, reading the PNGs and writing
the ``.npy`` files included.

    python -m tools.benchmarks.proposal_cache [--quick]

(from the repository root; ``python tools/benchmark.py --sections selective_search`` measures it with
selective search).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from rcnn.config_schema import ProposalsConfig
from rcnn.data.coco import CocoDetection
from rcnn.data.synthetic import make_detection_dataset
from rcnn.proposals.cache import ProposalCache
from rcnn.proposals.compute import compute_missing, default_workers, search_params

FULL = {"images": 24, "size": 256, "reps": 2}
QUICK = {"images": 4, "size": 96, "reps": 1}


def measure(images: int, size: int, reps: int, workers: tuple[int, ...]) -> dict[int, float]:
    """Median images/s of caching ``images`` synthetic ``size``x``size`` images (fast preset, 2000 boxes
    at most) with each worker count."""
    params = search_params(ProposalsConfig(mode="fast", max_boxes=2000))
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_detection_dataset(
            os.path.join(tmp, "data"), images, 0, image_size=size, seed=0, workers=1
        )
        dataset = CocoDetection(paths["train_images"], paths["train_annotations"], filter_empty=False)
        rates: dict[int, list[float]] = {w: [] for w in workers}
        for rep in range(reps):
            for w in workers if rep % 2 == 0 else workers[::-1]:
                cache = ProposalCache(os.path.join(tmp, f"cache_{w}_{rep}"), params)
                start = time.perf_counter()
                compute_missing(dataset, cache, params, w, progress=False)
                rates[w].append(len(dataset) / (time.perf_counter() - start))
                if cache.missing(dataset.ids):
                    raise RuntimeError(f"proposal cache with {w} worker(s) is missing images")
    return {w: statistics.median(r) for w, r in rates.items()}


def run_section(*, quick: bool = False) -> str:
    """The markdown subsection ``### Proposal cache throughput``."""
    case = QUICK if quick else FULL
    workers = tuple(sorted({1, default_workers()}))
    rates = measure(case["images"], case["size"], case["reps"], workers)
    lines = [
        "### Proposal cache throughput",
        "",
        f"`python -m tools.benchmarks.proposal_cache{' --quick' if quick else ''}`: "
        "selective search (`fast`) "
        f"over {case['images']} synthetic {case['size']}x{case['size']} images into a fresh cache, "
        f"median of {case['reps']} run(s) per worker count.",
        "",
        "| workers | images/s | speed-up over 1 worker |",
        "|---|---|---|",
    ]
    lines += [f"| {w} | {rate:.2f} | {rate / rates[1]:.2f} |" for w, rate in rates.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    print(run_section(quick=parser.parse_args(argv).quick))


if __name__ == "__main__":
    main()
