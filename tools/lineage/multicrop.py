"""Multi-crop testing (Szegedy et al. 2015, GoogLeNet Table 3): top-1 / top-5 error of one trained
GoogLeNet with 1, 10 and 144 crops per image on the synthetic val split, the softmax averaged over the
crops, and the cost in forward passes per image.

At the training crop size ``c`` (64 here, 224 in the paper) and resize ``r`` (72; 256):

* 1 crop: the centre ``c`` crop of the image resized to ``r`` (shorter side);
* 10 crops: its 4 corners and centre, and their mirror images;
* 144 crops: 4 scales (shorter side ``c * 256/224, 288/224, 320/224, 352/224``), 3 squares per scale (left,
  centre, right, or top, centre, bottom), 6 crops per square (4 corners and the centre at ``c``, and the
  whole square resized to ``c``), and their mirror images: 4 x 3 x 6 x 2. For square images (the synthetic
  set's) the 3 squares coincide, so the 144 hold 48 distinct crops.
"""

from __future__ import annotations

import os
import tempfile
import time

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchvision.transforms.v2 import functional as TF

from rcnn.evaluation.classification import topk_errors
from tools.lineage.classifier_training import synthetic_set, train_from_config
from tools.lineage.common import Section, TensorSet, load_imagefolder, markdown_table
from tools.lineage.filters import load_classifier

PAPER_SCALES = (256, 288, 320, 352)  # shorter sides for 224 crops
PAPER = {1: 10.07, 10: 9.15, 144: 7.89}  # top-5 %, one GoogLeNet (Table 3, 1 model)


def _resize(image: Tensor, shorter: int) -> Tensor:
    return TF.resize(image, [shorter], antialias=True)


def _with_mirrors(crops: list[Tensor]) -> list[Tensor]:
    return crops + [c.flip(-1) for c in crops]


def crops_1(image: Tensor, resize: int, crop: int) -> list[Tensor]:
    return [TF.center_crop(_resize(image, resize), [crop])]


def crops_10(image: Tensor, resize: int, crop: int) -> list[Tensor]:
    return _with_mirrors(list(TF.five_crop(_resize(image, resize), [crop])))


def crops_144(image: Tensor, resize: int, crop: int) -> list[Tensor]:
    out = []
    for paper_side in PAPER_SCALES:
        scaled = _resize(image, round(crop * paper_side / 224))
        h, w = scaled.shape[-2:]
        side = min(h, w)
        for start in (0, (max(h, w) - side) // 2, max(h, w) - side):
            square = scaled[..., start : start + side, :] if h > w else scaled[..., :, start : start + side]
            out += list(TF.five_crop(square, [crop])) + [TF.resize(square, [crop, crop], antialias=True)]
    return _with_mirrors(out)


SCHEMES = {1: crops_1, 10: crops_10, 144: crops_144}


def chance_note(what: str, chance: float) -> str:
    return (
        f"{what} is still at chance level (top-1 error {100 * chance:.1f}%: one class in "
        f"{round(1 / (1 - chance))}) after this short training, so these figures say nothing about "
        "the crops: a longer training (more epochs, `solver.epochs=`) is needed before the comparison means "
        "anything."
    )


@torch.inference_mode()
def multicrop_scores(
    model: nn.Module, data: TensorSet, crops: int, resize: int, crop: int, mean: list[float], std: list[float]
) -> Tensor:
    """``(N, K)`` softmax averaged over the ``crops`` crops of each image."""
    model.eval()
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    out = []
    for image in data.images:
        batch = torch.stack(SCHEMES[crops](image, resize, crop)).float() / 255.0
        assert batch.shape[0] == crops, batch.shape
        out.append(F.softmax(model((batch - m) / s).float(), dim=1).mean(0))
    return torch.stack(out)


def run(output_dir: str, quick: bool = False, work_dir: str | None = None) -> Section:
    os.makedirs(output_dir, exist_ok=True)
    train_per_class, val_per_class, epochs = (4, 1, 1) if quick else (60, 10, 4)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        root = synthetic_set(work_dir or tmp, train_per_class, val_per_class)
        overrides = [
            f"data.root={root}",
            f"solver.epochs={epochs}",
            "solver.warmup_epochs=0",
            "test.ten_crop=false",
            "solver.batch_size=" + ("12" if quick else "64"),
        ]
        start = time.perf_counter()
        path, result = train_from_config(
            "synthetic_googlenet.yaml", os.path.join(tmp, "googlenet"), overrides
        )
        train_s = time.perf_counter() - start
        model = load_classifier(path)
    val = load_imagefolder(os.path.join(root, "val"))
    if quick:
        val = TensorSet(val.images[:3], val.labels[:3], val.classes)
    rows, top1 = [], []
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # the config's (ImageNet's) normalisation
    for crops in SCHEMES:
        start = time.perf_counter()
        scores = multicrop_scores(model, val, crops, 72, 64, mean, std)
        seconds = time.perf_counter() - start
        err = topk_errors(scores, val.labels)
        top1.append(err["top1_err"])
        paper = f"{PAPER[crops]:.2f}" if crops in PAPER else "—"
        rows.append(
            [
                str(crops),
                f"{100 * err['top1_err']:.1f}",
                f"{100 * err['top5_err']:.1f}",
                str(crops),
                f"{1000 * seconds / len(val):.0f}",
                paper,
            ]
        )
    text = [
        f"GoogLeNet of `configs/classification/synthetic_googlenet.yaml` trained {epochs} epoch(s) on "
        f"{train_per_class * 9} synthetic images ({train_s:.0f} s), tested on {len(val)} val images "
        f"({len(val.classes)} classes: top-5 of 9 is an easy mark).",
        "",
        markdown_table(
            [
                "crops",
                "top-1 err %",
                "top-5 err %",
                "forward passes / image",
                "ms / image",
                "paper top-5 err % (ImageNet)",
            ],
            rows,
        ),
    ]
    chance = 1 - 1 / len(val.classes)
    if min(top1) >= chance - 1e-9:
        text += ["", chance_note("This GoogLeNet", chance)]
    return Section("multicrop", "Multi-crop testing", "\n".join(text), [])
