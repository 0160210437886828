"""What the benchmark sections share: the command line of a section module."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def section_main(doc: str, run_section: Callable[..., str], argv: list[str] | None, quick_help: str) -> None:
    """``python -m rcnn.benchmark.<section> [--quick] [--device D] [--threads N] [--reps R]``: print the
    markdown of ``run_section``. ``doc``: the module docstring (its first paragraph is the description)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    print(run_section(device=args.device, quick=args.quick, threads=args.threads, reps=args.reps))
