"""Degradation (He et al. 2016, Fig. 1 and Fig. 6): plain-20 / plain-56 against ResNet-20 / ResNet-56 on
the synthetic classification set at 32x32 (9 classes), the paper's CIFAR recipe: SGD lr 0.1, momentum 0.9,
weight decay 1e-4, lr / 10 at 50% and 75% of the iterations, BN, He initialisation, flips and crops of
the images padded by 4 pixels. Curves of training error (bold; running, on the augmented batches) and
test error (thin) against iterations, and the table of final errors with the paper's two findings
checked: plain-56 above plain-20 (degradation), ResNet-56 below ResNet-20.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import torch

import backbones
from rcnn.data.synthetic import make_classification_dataset
from rcnn.visualization import new_figure, save_figure
from tools.lineage.common import (
    Schedule,
    Section,
    TensorSet,
    load_imagefolder,
    markdown_table,
    train_on_tensors,
)

NETWORKS = ("plain20", "plain56", "resnet20", "resnet56")
COLOURS = {"plain20": "C0", "plain56": "C3", "resnet20": "C2", "resnet56": "C1"}


@dataclass(frozen=True)
class Setup:
    """What the experiment trains: the set's size, the networks' width and the schedule's knobs (the rest
    of :class:`Schedule` is the paper's recipe)."""

    train_per_class: int
    test_per_class: int
    width: int  # channels of the first stage (16 in the paper)
    iterations: int
    batch_size: int
    eval_period: int
    warmup_iterations: int = 0  # linear warm-up of the lr from warmup_factor * 0.1 (0: none)
    warmup_factor: float = 0.1
    zero_init_residual: bool = False  # the ResNets' last BN gamma of each residual branch starts at 0
    seed: int = 0  # weights' initialisation and the batches' order
    workers: int = 2  # networks trained at once, one process and one torch thread each

    def schedule(self) -> Schedule:
        return Schedule(
            iterations=self.iterations,
            batch_size=self.batch_size,
            eval_period=self.eval_period,
            warmup_iterations=self.warmup_iterations,
            warmup_factor=self.warmup_factor,
            seed=self.seed,
        )


FULL = Setup(400, 100, 8, iterations=480, batch_size=64, eval_period=40, warmup_iterations=96)
QUICK = Setup(12, 6, 4, iterations=6, batch_size=16, eval_period=3, warmup_iterations=2, workers=1)


# What was tried before FULL was chosen: final training errors (%) of plain20, plain56, resnet20, resnet56
# (None: not run) and the set-up's --setup overrides of tools/experiments.py degradation.
TRIED: list[tuple[str, str, tuple[float | None, ...]]] = [
    (
        "240 iterations, no warm-up (the earlier default; weights not re-seeded per network)",
        "warmup_iterations=0",
        (53.8, 84.4, 40.6, 84.5),
    ),
    (
        "240 iterations, no warm-up, ResNets' last residual BN gamma at 0",
        "warmup_iterations=0 zero_init_residual=true",
        (None, None, None, 73.1),
    ),
    (
        "120 iterations, warm-up 24: ResNet-56 ahead of ResNet-20 by less than the noise",
        "iterations=120 warmup_iterations=24 eval_period=10",
        (71.6, None, 61.3, 60.6),
    ),
    (
        "240 iterations, warm-up 48 (the earlier default), seed 0: both findings shown",
        "iterations=240 warmup_iterations=48 eval_period=20",
        (55.9, 85.0, 40.2, 18.0),
    ),
    (
        "the same on seed 1: degradation shown, the residual finding NOT (ResNet-56 35.0 vs 25.2)",
        "iterations=240 warmup_iterations=48 eval_period=20 seed=1",
        (36.9, 87.0, 25.2, 35.0),
    ),
    (
        "the same on seed 1 with the ResNets' last residual BN gamma at 0: ResNet-20 far worse",
        "iterations=240 warmup_iterations=48 eval_period=20 seed=1 zero_init_residual=true",
        (None, None, 79.4, None),
    ),
    (
        "the same on seed 2 with the ResNets' last residual BN gamma at 0",
        "iterations=240 warmup_iterations=48 eval_period=20 seed=2 zero_init_residual=true",
        (None, None, 73.4, None),
    ),
    (
        "this default (480 iterations, warm-up 96) on seed 1: both findings shown",
        "seed=1",
        (11.9, 81.4, 8.3, 4.4),
    ),
    (
        "this default, ResNets only, seed 2: ResNet-56 ahead",
        "seed=2",
        (None, None, 7.0, 5.1),
    ),
]


def tried_table() -> str:
    rows = [
        [
            what,
            " ".join(f"`{o}`" for o in overrides.split()),
            *("—" if e is None else f"{e:.1f}" for e in errors),
        ]
        for what, overrides, errors in TRIED
    ]
    header = ["set-up", "--setup", *(f"{n} train err %" for n in NETWORKS)]
    return (
        "What was tried before this default (—: not run; 1 torch thread per network):\n\n"
        + markdown_table(header, rows)
    )


def parse_overrides(items: list[str]) -> dict[str, int | float | bool]:
    """``["iterations=480", "zero_init_residual=true"]`` -> ``{"iterations": 480, ...}``, typed by the
    fields of :class:`Setup`; ``ValueError`` names a bad item."""
    types = {f.name: f.type for f in dataclasses.fields(Setup)}
    out: dict[str, int | float | bool] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in types:
            raise ValueError(f"'{item}': expected KEY=VALUE with KEY one of {', '.join(types)}")
        kind = types[key]
        try:
            if kind == "bool":
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out[key] = value.lower() in ("true", "1")
            else:
                out[key] = float(value) if kind == "float" else int(value)
        except ValueError:
            raise ValueError(f"'{item}': {key} takes a {kind}") from None
    return out


def plot_curves(histories: dict[str, list[dict[str, float]]], path: str) -> str:
    fig, (ax,) = new_figure(title="Plain vs residual nets: train (bold), test (thin)", panel_size=(7.0, 4.5))
    for name, history in histories.items():
        its = [h["iteration"] for h in history]
        ax.plot(
            its, [100 * h["train_err"] for h in history], color=COLOURS[name], lw=2.2, label=f"{name} train"
        )
        ax.plot(
            its, [100 * h["test_err"] for h in history], color=COLOURS[name], lw=0.9, label=f"{name} test"
        )
    ax.set_xlabel("iteration")
    ax.set_ylabel("error (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def findings(final: dict[str, dict[str, float]]) -> list[str]:
    """The paper's two findings, each as a sentence saying whether this run shows it."""
    out = []
    for deep, shallow, want, what in (
        ("plain56", "plain20", "higher", "degradation: the deeper plain net trains worse"),
        ("resnet56", "resnet20", "lower", "residual learning: the deeper ResNet trains better"),
    ):
        d, s = 100 * final[deep]["train_err"], 100 * final[shallow]["train_err"]
        shown = d > s if want == "higher" else d < s
        verdict = "shown" if shown else "NOT shown at this budget"
        out.append(f"- {what}: {deep} {d:.1f}% vs {shallow} {s:.1f}% training error: {verdict}.")
    return out


def budget_note(final: dict[str, dict[str, float]]) -> list[str]:
    """A sentence when a 56-layer network is still near chance: the budget is too small to judge it."""
    chance = 1 - 1 / 9
    slow = [n for n in ("plain56", "resnet56") if final[n]["train_err"] > chance - 0.1]
    if not slow:
        return []
    return [
        "",
        f"{' and '.join(slow)} ended within 10 points of chance ({100 * chance:.1f}% for 9 classes): at this "
        "budget the deep networks have barely started to train, so a finding not shown here is not refuted "
        "either (the paper trained 64k iterations of batch 128).",
    ]


def deviations(setup: Setup) -> str:
    """The set-up's departures from the paper's recipe beyond its size, as one sentence (or "")."""
    parts = []
    if setup.warmup_iterations:
        parts.append(
            f"the lr rises linearly from {setup.warmup_factor * 0.1:g} to 0.1 over the first "
            f"{setup.warmup_iterations} iterations, for all four networks (the paper warmed up only "
            "ResNet-110, at 0.01 until the training error fell below 80%, about 400 iterations, Sec. 4.2; "
            "without it ResNet-56 stayed near chance: see what was tried, below)"
        )
    if setup.zero_init_residual:
        parts.append("the last BN gamma of every residual branch starts at 0 (Goyal et al. 2017)")
    return f"Deviations: {'; '.join(parts)}." if parts else ""


def train_network(
    name: str, setup: Setup, train: TensorSet, test: TensorSet, work_dir: str | None = None
) -> tuple[list[dict[str, float]], float, float]:
    """Train one of :data:`NETWORKS` on one torch thread; returns its error history, wall-clock and CPU
    seconds. The weights come from ``setup.seed`` alone, so a network trains the same in any process."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(setup.seed)
        resnet = name.startswith("resnet")
        options = {"zero_init_residual": True} if setup.zero_init_residual and resnet else {}
        model = backbones.build_classifier(name, num_classes=len(train.classes), width=setup.width, **options)
        start, start_cpu = time.perf_counter(), time.process_time()
        history = train_on_tensors(model, train, test, setup.schedule(), work_dir=work_dir)
        return history, time.perf_counter() - start, time.process_time() - start_cpu
    finally:
        torch.set_num_threads(threads)


def train_networks(
    setup: Setup, train: TensorSet, test: TensorSet, work_dir: str | None = None
) -> dict[str, tuple[list[dict[str, float]], float, float]]:
    """:func:`train_network` for each of :data:`NETWORKS`, ``setup.workers`` at a time in fresh (spawned)
    processes, the 56-layer ones first; ``workers=1`` trains them one after the other in this process."""
    if setup.workers <= 1:
        return {name: train_network(name, setup, train, test, work_dir) for name in NETWORKS}
    longest_first = sorted(NETWORKS, key=lambda n: -int(n.removeprefix("plain").removeprefix("resnet")))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=setup.workers, mp_context=context) as pool:
        futures = {n: pool.submit(train_network, n, setup, train, test, work_dir) for n in longest_first}
        return {name: futures[name].result() for name in NETWORKS}


def run(
    output_dir: str,
    quick: bool = False,
    work_dir: str | None = None,
    overrides: dict[str, int | float | bool] | None = None,
) -> Section:
    setup = dataclasses.replace(QUICK if quick else FULL, **(overrides or {}))
    schedule = setup.schedule()
    os.makedirs(output_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        make_classification_dataset(
            tmp, setup.train_per_class, setup.test_per_class, image_size=32, workers=1
        )
        train, test = load_imagefolder(os.path.join(tmp, "train")), load_imagefolder(os.path.join(tmp, "val"))
    runs = train_networks(setup, train, test, work_dir)
    histories = {name: runs[name][0] for name in NETWORKS}
    seconds = {name: runs[name][1] for name in NETWORKS}
    cpu = {name: runs[name][2] for name in NETWORKS}
    png = plot_curves(histories, os.path.join(output_dir, "degradation.png"))
    final = {name: h[-1] for name, h in histories.items()}
    rows = [
        [
            name,
            f"{100 * final[name]['train_err']:.1f}",
            f"{100 * final[name]['test_err']:.1f}",
            f"{seconds[name]:.0f}",
            f"{cpu[name]:.0f}",
        ]
        for name in NETWORKS
    ]
    s = schedule
    text = [
        f"{len(train)} training / {len(test)} test images of the synthetic set at 32x32 "
        f"({len(train.classes)} classes), base width {setup.width} (the paper: 16), {s.iterations} "
        f"iterations of batch {s.batch_size} "
        f"(the paper: 64k of batch 128), lr {s.base_lr} / 10 at {s.drops[0]:.0%} and {s.drops[1]:.0%}, "
        f"momentum {s.momentum}, weight decay {s.weight_decay}, flips and {s.pad_crop}-pixel padded crops. "
        "Training error: the running error over the last evaluation period's augmented batches. "
        f"Weights and batches from seed {setup.seed}. {deviations(setup)}",
        "",
        markdown_table(["network", "final train err %", "final test err %", "train s", "CPU s"], rows),
        "",
        f"train s: wall-clock seconds; CPU s: the network's process's CPU seconds (1 torch thread; "
        f"{setup.workers} network(s) trained at once, each in its own process; the two differ when the "
        "cores are shared with other work).",
        "",
        *findings(final),
        *budget_note(final),
        "",
        f"![degradation curves]({os.path.basename(png)})",
        *([] if quick or overrides else ["", tried_table()]),
    ]
    return Section("degradation", "Degradation: plain vs residual networks", "\n".join(text), [png])
