"""Training curves from ``metrics.jsonl`` records: the loss terms (smoothed), the learning rate and the
periodic evaluation (AP, or a classifier's error), several runs overlaid, one colour per run."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.lines import Line2D

from .figures import new_figure, save_figure

STEP_KEYS = ("iteration", "epoch")
EVAL_KEYS = ("eval/AP", "eval/AP50", "eval/AP75", "val_top1_err", "val_top5_err")


def loss_keys(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The loss terms logged in ``records``, in first-seen order (``loss_*``, ``*_loss``, ``total_loss``)."""
    keys: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if isinstance(v, (int, float)) and (k.startswith("loss") or k.endswith("loss")):
                keys.setdefault(k)
    return list(keys)


def smooth(values: Sequence[float], weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased at the start (0: none)."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * float(v)
        out.append(avg / (1 - weight**i) if weight > 0 else float(v))
    return np.asarray(out)


def _series(records: Sequence[Mapping[str, Any]], step_key: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    pairs = [
        (r[step_key], r[key])
        for r in records
        if isinstance(r.get(key), (int, float)) and math.isfinite(r[key]) and step_key in r
    ]
    if not pairs:
        return np.zeros(0), np.zeros(0)
    xs, ys = zip(*pairs)
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


def step_key(records: Sequence[Mapping[str, Any]]) -> str:
    """``"iteration"`` (detector runs) or ``"epoch"`` (classifier runs): the step key the records carry."""
    for key in STEP_KEYS:
        if any(key in r for r in records):
            return key
    raise ValueError(f"the records have no step key ({' or '.join(STEP_KEYS)})")


def plot_training_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]], path: str | os.PathLike, *, smoothing: float = 0.6
) -> str:
    """One panel per loss term (smoothed; the raw values faint), one for the learning rate and one for the
    evaluation metrics found (AP, AP50, ...: one line style each). ``runs``: name -> records. A legend
    with one entry per run. Returns the path of the PNG."""
    if not runs:
        raise ValueError("no runs to plot")
    first = next(iter(runs.values()))
    x_key = step_key(first)
    losses = list(dict.fromkeys(k for records in runs.values() for k in loss_keys(records)))
    evals = [k for k in EVAL_KEYS if any(k in r for records in runs.values() for r in records)]
    panels = [*losses, "lr"] + (["eval"] if evals else [])
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = new_figure(rows, cols, title=f"Training curves ({len(runs)} run{'s' * (len(runs) > 1)})")
    colours = [f"C{i % 10}" for i in range(len(runs))]
    styles = ["-", "--", ":", "-."]
    for records, colour in zip(runs.values(), colours):
        for ax, key in zip(axes, panels):
            if key == "eval":
                for style, k in zip(styles, evals):
                    xs, ys = _series(records, x_key, k)
                    ax.plot(xs, ys, style, color=colour, marker="o", markersize=3)
                continue
            xs, ys = _series(records, x_key, key)
            if not xs.size:
                continue
            if key == "lr":
                ax.plot(xs, ys, color=colour)
                continue
            ax.plot(xs, ys, color=colour, alpha=0.25, linewidth=0.8)
            ax.plot(xs, smooth(ys, smoothing), color=colour)
    for ax, key in zip(axes, panels):
        ax.set_xlabel(f"{x_key}")
        ax.grid(alpha=0.3)
        if key == "lr":
            ax.set_title("Learning rate")
            ax.set_ylabel("learning rate")
        elif key == "eval":
            ax.set_title(
                "Evaluation: " + ", ".join(f"{k.split('/')[-1]} ({s})" for s, k in zip(styles, evals))
            )
            ax.set_ylabel("AP or error (fraction)")
        else:
            ax.set_title(f"{key} (smoothed {smoothing:g})")
            ax.set_ylabel("loss")
    for ax in axes[len(panels) :]:
        ax.axis("off")
    entries = [Line2D([], [], color=c) for c in colours]
    fig.legend(entries, list(runs), loc="lower right", title="run")
    return save_figure(fig, path)
