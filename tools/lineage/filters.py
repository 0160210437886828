"""AlexNet's first-layer filters (Krizhevsky et al. 2012, Fig. 3): the kernels of the first convolution of
any trained classifier as a grid of colour patches, each normalised to its own range. Where the next
convolution is split in groups (AlexNet's two GPUs: ``groups=2`` in conv2) the kernels of each group form
their own block, as the paper's 48 + 48.

    python tools/experiments.py filters --checkpoint outputs/classifier/model_final.pth
"""

from __future__ import annotations

import math
import os
import tempfile

import numpy as np
from torch import nn

import backbones
from rcnn.utils.io import CheckpointError, atomic_save, load_checkpoint
from rcnn.visualization import new_figure, save_figure
from tools.lineage.classifier_training import synthetic_set, train_from_config
from tools.lineage.common import Section


def load_classifier(path: str) -> nn.Module:
    """The classifier of a checkpoint written by ``tools/train_classifier.py`` (``model_final.pth`` or an
    epoch checkpoint: ``model, name, num_classes, options``)."""
    state = load_checkpoint(path)
    missing = [k for k in ("model", "name", "num_classes") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a classifier checkpoint (no {', '.join(missing)})")
    model = backbones.build_classifier(state["name"], state["num_classes"], **state.get("options", {}))
    model.load_state_dict(state["model"])
    return model


def conv_layers(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def kernel_blocks(model: nn.Module) -> list[np.ndarray]:
    """conv1's kernels ``(out, in, k, k)`` split into the groups of the next convolution, each kernel
    normalised to 0..1 and laid out ``(k, k, 3)`` (grey for 1-channel input)."""
    convs = conv_layers(model)
    if not convs:
        raise ValueError(f"{type(model).__name__} has no convolution")
    w = convs[0].weight.detach().float().cpu()
    if w.shape[1] == 1:
        w = w.expand(-1, 3, -1, -1)
    w = w[:, :3]
    lo = w.amin(dim=(1, 2, 3), keepdim=True)
    hi = w.amax(dim=(1, 2, 3), keepdim=True)
    w = ((w - lo) / (hi - lo).clamp_min(1e-12)).permute(0, 2, 3, 1).numpy()  # (out, k, k, 3)
    groups = convs[1].groups if len(convs) > 1 and w.shape[0] % convs[1].groups == 0 else 1
    return np.split(w, groups)


def mosaic(kernels: np.ndarray, cols: int, gap: int = 1) -> np.ndarray:
    n, k = kernels.shape[:2]
    rows = math.ceil(n / cols)
    out = np.ones((rows * (k + gap) + gap, cols * (k + gap) + gap, 3))
    for i, kern in enumerate(kernels):
        r, c = divmod(i, cols)
        out[gap + r * (k + gap) : gap + r * (k + gap) + k, gap + c * (k + gap) : gap + c * (k + gap) + k] = (
            kern
        )
    return out


def plot_filters(model: nn.Module, path: str, title: str) -> tuple[str, list[int], tuple[int, ...]]:
    """Draw the blocks; returns the path, the kernels per block and the kernel shape ``(in, k, k)``."""
    blocks = kernel_blocks(model)
    per_block = [b.shape[0] for b in blocks]
    cols = 16 if per_block[0] % 16 == 0 else math.ceil(math.sqrt(per_block[0]))
    images = [mosaic(b, cols) for b in blocks]
    h, w = images[0].shape[:2]
    fig, axes = new_figure(len(blocks), 1, title=title, panel_size=(min(12.0, w / 10), max(1.5, h / 10)))
    for i, (ax, image) in enumerate(zip(axes, images)):
        ax.imshow(image, interpolation="nearest")
        ax.set_axis_off()
        if len(blocks) > 1:
            ax.set_title(f"group {i + 1}: {per_block[i]} kernels", fontsize=9)
    first = conv_layers(model)[0]
    return save_figure(fig, path), per_block, (first.in_channels, *first.kernel_size)


def run(
    output_dir: str, quick: bool = False, work_dir: str | None = None, checkpoint: str | None = None
) -> Section:
    os.makedirs(output_dir, exist_ok=True)
    how = f"`{checkpoint}`"
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        if checkpoint is None and quick:  # no training: the initial (random) kernels of the paper's AlexNet
            checkpoint = os.path.join(tmp, "alexnet_init.pth")
            model = backbones.build_classifier("alexnet", 9)
            atomic_save(
                {"model": model.state_dict(), "name": "alexnet", "num_classes": 9, "options": {}}, checkpoint
            )
            how = "the untrained (randomly initialised) AlexNet (`--quick`)"
        elif checkpoint is None:
            root = synthetic_set(work_dir or tmp, 60, 20)
            overrides = [
                f"data.root={root}",
                "model.name=alexnet",
                "solver.epochs=4",
                "solver.warmup_epochs=1",
                "test.ten_crop=false",
            ]
            checkpoint, result = train_from_config(
                "synthetic_alexnet.yaml", os.path.join(tmp, "alexnet"), overrides
            )
            chance = result.metrics["val_top1_err"] >= 1 - 1 / 9 - 1e-9
            how = (
                "the paper's AlexNet (`model.name=alexnet`: 96 kernels, `groups=2`) trained by "
                "`configs/classification/synthetic_alexnet.yaml` for 4 epochs on 540 synthetic images "
                f"(val top-1 error {100 * result.metrics['val_top1_err']:.1f}%"
                + (
                    ": chance level, so the kernels are still close to their random initialisation)"
                    if chance
                    else ")"
                )
            )
        model = load_classifier(checkpoint)
        png, per_block, shape = plot_filters(
            model, os.path.join(output_dir, "filters.png"), title="conv1 kernels, each normalised"
        )
    text = [
        f"conv1 of {how}: {sum(per_block)} kernels of {shape[0]}x{shape[1]}x{shape[2]}, "
        f"{len(per_block)} block(s) of {' + '.join(map(str, per_block))}.",
        "",
        f"![conv1 kernels]({os.path.basename(png)})",
    ]
    return Section("filters", "AlexNet's first-layer filters", "\n".join(text), [png])
