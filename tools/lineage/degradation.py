"""Degradation (He et al. 2016, Fig. 1 and Fig. 6): plain-20 / plain-56 against ResNet-20 / ResNet-56 on
the synthetic classification set at 32x32 (9 classes), the paper's CIFAR recipe: SGD lr 0.1, momentum 0.9,
weight decay 1e-4, lr / 10 at 50% and 75% of the iterations, BN, He initialisation, flips and crops of
the images padded by 4 pixels. Curves of training error (bold; running, on the augmented batches) and
test error (thin) against iterations, and the table of final errors with the paper's two findings
checked: plain-56 above plain-20 (degradation), ResNet-56 below ResNet-20.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

import backbones
from rcnn.data.synthetic import make_classification_dataset
from rcnn.visualization import new_figure, save_figure
from tools.lineage.common import Schedule, Section, load_imagefolder, markdown_table, train_on_tensors

NETWORKS = ("plain20", "plain56", "resnet20", "resnet56")
COLOURS = {"plain20": "C0", "plain56": "C3", "resnet20": "C2", "resnet56": "C1"}


@dataclass
class Setup:
    train_per_class: int
    test_per_class: int
    width: int  # channels of the first stage (16 in the paper)
    schedule: Schedule


FULL = Setup(400, 100, 8, Schedule(iterations=240, batch_size=64, eval_period=20))
QUICK = Setup(12, 6, 4, Schedule(iterations=6, batch_size=16, eval_period=3))


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
        "either. Showing both needs training near convergence (the paper: 64k iterations of batch 128).",
    ]


def run(output_dir: str, quick: bool = False, work_dir: str | None = None) -> Section:
    setup = QUICK if quick else FULL
    os.makedirs(output_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        make_classification_dataset(
            tmp, setup.train_per_class, setup.test_per_class, image_size=32, workers=1
        )
        train, test = load_imagefolder(os.path.join(tmp, "train")), load_imagefolder(os.path.join(tmp, "val"))
    histories, seconds = {}, {}
    for name in NETWORKS:
        model = backbones.build_classifier(name, num_classes=len(train.classes), width=setup.width)
        start = time.perf_counter()
        histories[name] = train_on_tensors(model, train, test, setup.schedule, work_dir=work_dir)
        seconds[name] = time.perf_counter() - start
    png = plot_curves(histories, os.path.join(output_dir, "degradation.png"))
    final = {name: h[-1] for name, h in histories.items()}
    rows = [
        [
            name,
            f"{100 * final[name]['train_err']:.1f}",
            f"{100 * final[name]['test_err']:.1f}",
            f"{seconds[name]:.0f}",
        ]
        for name in NETWORKS
    ]
    s = setup.schedule
    text = [
        f"{len(train)} training / {len(test)} test images of the synthetic set at 32x32 "
        f"({len(train.classes)} classes), base width {setup.width} (the paper: 16), {s.iterations} "
        f"iterations of batch {s.batch_size} "
        f"(the paper: 64k of batch 128), lr {s.base_lr} / 10 at {s.drops[0]:.0%} and {s.drops[1]:.0%}, "
        f"momentum {s.momentum}, weight decay {s.weight_decay}, flips and {s.pad_crop}-pixel padded crops. "
        "Training error: the running error over the last evaluation period's augmented batches.",
        "",
        markdown_table(["network", "final train err %", "final test err %", "train s"], rows),
        "",
        *findings(final),
        *budget_note(final),
        "",
        f"![degradation curves]({os.path.basename(png)})",
    ]
    return Section("degradation", "Degradation: plain vs residual networks", "\n".join(text), [png])
