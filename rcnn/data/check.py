"""The data check before training: every image file exists and its header reads as an image of the size
the annotations say, without decoding the pixels (PIL reads the header only: seconds for 10k images).

    problems = check_image_files([(path, image_id, (height, width)), ...])   # [] when all is well
    raise_problems(problems, what="train.json")                              # DatasetError: all at once

Problems are reported together, the first :data:`SHOWN` and a count, with the hint :data:`SKIP_HINT` (a
single problem in one line).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from PIL import Image, UnidentifiedImageError

from rcnn.data.errors import DatasetError

logger = logging.getLogger(__name__)

SHOWN = 20  # problems listed in one report; the rest are counted
SKIP_HINT = "set data.skip_invalid=true to skip them"

ImageRecord = tuple[str, object, "tuple[int, int] | None"]  # (path, image id or None, (H, W) or None)


def check_image_file(path: str, size: tuple[int, int] | None = None) -> str | None:
    """The problem with the image file ``path`` (missing, unreadable header, not ``size`` = (H, W)), or
    None. Reads the header only."""
    if not os.path.isfile(path):
        return "image file not found"
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        reason = "not an image" if isinstance(exc, UnidentifiedImageError) else str(exc)
        return f"cannot read the image header ({reason})"
    if width <= 0 or height <= 0:
        return f"image is {width}x{height} (WxH)"
    if size is not None and (height, width) != tuple(size):
        return f"image is {width}x{height} (WxH) but the annotation file says {size[1]}x{size[0]}"
    return None


def check_image_files(records: Iterable[ImageRecord]) -> list[tuple[str, object, str]]:
    """``[(path, image id, problem), ...]`` for every record whose file fails :func:`check_image_file`."""
    problems = []
    for path, image_id, size in records:
        problem = check_image_file(path, size)
        if problem is not None:
            problems.append((path, image_id, problem))
    return problems


def describe_problems(problems: list[tuple[str, object, str]], source: str, hint: str = SKIP_HINT) -> str:
    """One report of ``problems`` found for ``source``: a summary line, the first :data:`SHOWN` problems
    (one per line) and how many more, then :data:`SKIP_HINT`."""
    if len(problems) == 1:
        path, image_id, problem = problems[0]
        return _line(path, image_id, problem) + f" ({source}; {hint})"
    lines = [f"{source}: {len(problems)} unusable image files; {hint}"]
    for path, image_id, problem in problems[:SHOWN]:
        lines.append("  " + _line(path, image_id, problem))
    if len(problems) > SHOWN:
        lines.append(f"  ... and {len(problems) - SHOWN} more")
    return "\n".join(lines)


def _line(path: str, image_id: object, problem: str) -> str:
    return f"{path}" + (f", image id={image_id}" if image_id is not None else "") + f": {problem}"


def raise_problems(problems: list[tuple[str, object, str]], source: str, hint: str = SKIP_HINT) -> None:
    """Raise one :class:`DatasetError` describing every problem (nothing when there is none)."""
    if problems:
        raise DatasetError(describe_problems(problems, source, hint))
