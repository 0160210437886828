"""matplotlib figures without a display: the Agg backend, and one way to make and save a figure.

``new_figure(rows, cols, title=...)`` gives the figure and its panels; ``save_figure(fig, "x.png")`` writes it
at a fixed size (width x height = panel size x panels x DPI pixels) and closes it.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # no display: pictures are written to files only

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.figure import Figure  # noqa: E402

from rcnn.utils.io import atomic_write_bytes  # noqa: E402

DPI = 100


def new_figure(
    rows: int = 1, cols: int = 1, *, title: str, panel_size: tuple[float, float] = (5.0, 4.0)
) -> tuple[Figure, list]:
    """A figure of ``rows x cols`` panels of ``panel_size`` inches, its title set; returns the figure and
    its axes as a flat list (row-major)."""
    fig, axes = plt.subplots(
        rows, cols, figsize=(panel_size[0] * cols, panel_size[1] * rows), dpi=DPI, squeeze=False
    )
    fig.suptitle(title)
    return fig, [ax for row in axes for ax in row]


def save_figure(fig: Figure, path: str | os.PathLike) -> str:
    """Write ``fig`` to ``path`` (PNG) at its own size, making the folder, and close it. Returns the path."""
    fig.tight_layout()
    try:
        return atomic_write_bytes(lambda f: fig.savefig(f, dpi=DPI, format="png"), path)
    finally:
        plt.close(fig)
