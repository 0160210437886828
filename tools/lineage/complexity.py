"""Comparing complexity (after Canziani, Paszke & Culurciello 2017): every classification network of
``backbones`` at its paper's input size: parameters, multiply-adds and forward activation memory
(:func:`backbones.summary.summarize`, one image), the published ImageNet top-1 / top-5 errors with their
source, forward images per second on this machine (all measured in this one process, batch 4, median of 3),
and the bubble chart: multiply-adds on x, error on y, bubble area proportional to parameters."""

from __future__ import annotations

import os
import statistics
import time

import torch

import backbones
from backbones import cifar_resnet
from backbones.summary import summarize
from rcnn.visualization import new_figure, save_figure
from tools.lineage.common import Section, markdown_table


def input_size(name: str) -> tuple[int, int, int]:
    """``(channels, H, W)`` of the network's paper input: LeNet-5 one 32x32 grey plane, the CIFAR nets
    32x32, AlexNet 227x227, the others 224x224."""
    if name == "lenet5":
        return (1, 32, 32)
    if name in cifar_resnet.CLASSIFIERS:
        return (3, 32, 32)
    return (3, 227, 227) if name == "alexnet" else (3, 224, 224)


def options(name: str) -> dict:
    return {"in_channels": 1} if name == "lenet5" else {}


def num_classes(name: str) -> int:
    return 10 if input_size(name)[1] == 32 else 1000


# Published single-model errors (%), as the papers report them: (top-1, top-5, source).
PUBLISHED: dict[str, tuple[float | None, float | None, str]] = {
    "lenet5": (0.95, None, "LeCun et al. 1998, MNIST test error (not ImageNet)"),
    "alexnet": (37.5, 17.0, "Krizhevsky et al. 2012, ILSVRC-2010 test"),
    "zfnet": (None, 11.7, "Zeiler & Fergus 2014, ILSVRC-2013 (as quoted)"),
    "vgg16": (24.8, 7.5, "Simonyan & Zisserman 2015, Table 4 (multi-scale test)"),
    "googlenet": (None, 10.07, "Szegedy et al. 2015, Table 3 (1 model, 1 crop)"),
    "resnet34": (21.84, 5.71, "He et al. 2016, Table 4 (option B, 10-crop)"),
    "resnet50": (20.74, 5.25, "He et al. 2016, Table 4 (10-crop)"),
    "resnet101": (19.87, 4.60, "He et al. 2016, Table 4 (10-crop)"),
    "resnet152": (19.38, 4.49, "He et al. 2016, Table 4 (10-crop)"),
    "se_resnet50": (23.29, None, "Hu et al. 2018, Table 2 (single crop)"),
    "se_resnet101": (22.38, None, "Hu et al. 2018, Table 2 (single crop)"),
    "se_resnet152": (21.57, None, "Hu et al. 2018, Table 2 (single crop)"),
}
QUICK_NETWORKS = ("lenet5", "alexnet", "resnet20", "resnet18")


def images_per_second(name: str, batch: int, repeats: int) -> float:
    model = backbones.build_classifier(name, num_classes(name), **options(name)).eval()
    x = torch.randn(batch, *input_size(name))
    times = []
    with torch.inference_mode():
        model(x[:1])  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def bubble_chart(rows: list[dict], path: str) -> str:
    fig, axes = new_figure(
        1, 2, title="Error vs multiply-adds (bubble area ~ parameters)", panel_size=(6.5, 5)
    )
    biggest = max(r["params"] for r in rows)
    for ax, key in zip(axes, ("top1", "top5")):
        for r in (r for r in rows if r[key] is not None and r["name"] != "lenet5"):
            ax.scatter(r["macs"] / 1e9, r[key], s=2000 * r["params"] / biggest, alpha=0.45)
            ax.annotate(r["name"], (r["macs"] / 1e9, r[key]), fontsize=8, ha="center", va="center")
        ax.set_xscale("log")
        ax.set_xlabel("multiply-adds per image (G, log scale)")
        ax.set_ylabel(f"published ImageNet {key} error (%)")
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def run(output_dir: str, quick: bool = False, work_dir: str | None = None) -> Section:
    os.makedirs(output_dir, exist_ok=True)
    names = list(QUICK_NETWORKS) if quick else sorted(backbones.CLASSIFIERS)
    batch, repeats = (1, 1) if quick else (4, 3)
    rows = []
    for name in names:
        with torch.device("meta"):
            model = backbones.build_classifier(name, num_classes(name), **options(name))
        s = summarize(model, input_size(name), name=name)
        top1, top5, source = PUBLISHED.get(name, (None, None, ""))
        rows.append(
            {
                "name": name,
                "input": input_size(name),
                "params": s.params,
                "macs": s.macs,
                "act_mb": s.activation_mb,
                "top1": top1,
                "top5": top5,
                "source": source,
                "ips": images_per_second(name, batch, repeats),
            }
        )
    png = bubble_chart(rows, os.path.join(output_dir, "complexity.png"))

    def fmt(v: float | None) -> str:
        return "—" if v is None else f"{v:g}"

    table = markdown_table(
        [
            "network",
            "input",
            "params (M)",
            "mult-adds (M)",
            "activations (MiB)",
            "top-1 err %",
            "top-5 err %",
            "images/s",
            "source of the errors",
        ],
        [
            [
                r["name"],
                "x".join(map(str, r["input"])),
                f"{r['params'] / 1e6:.2f}",
                f"{r['macs'] / 1e6:,.1f}",
                f"{r['act_mb']:.1f}",
                fmt(r["top1"]),
                fmt(r["top5"]),
                f"{r['ips']:.1f}",
                r["source"],
            ]
            for r in rows
        ],
    )
    text = [
        f"{len(rows)} networks; activations: forward values of one image in fp32 (backbones.summary); "
        f"images/s: forward passes in eval mode, batch {batch}, median of {repeats}, CPU threads "
        f"{torch.get_num_threads()}, all in one process. LeNet-5's error is on MNIST, not ImageNet, and "
        "is left off the chart; the CIFAR networks have no ImageNet figure.",
        "",
        table,
        "",
        f"![complexity bubble chart]({os.path.basename(png)})",
    ]
    return Section("complexity", "Comparing complexity", "\n".join(text), [png])
