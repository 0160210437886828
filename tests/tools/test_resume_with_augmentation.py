"""Exact resume with random augmentation on: tools/train_detector.py and tools/train_classifier.py, run as
commands on tiny generated data. A run stopped half-way (at its end, or by SIGTERM in the middle) and
continued with ``--resume`` computes the losses of the uninterrupted run, with 0 and 2 data workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from rcnn.data.synthetic import make_classification_dataset, make_detection_dataset
from rcnn.engine.logging import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DETECTOR_CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")
LOSSES = ("loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box")
MAX_ITER = 6
EPOCHS = 3


def command(tool: str, *args: str) -> list[str]:
    """The tool's command line; callers put ``--resume`` last (it takes an optional path)."""
    return [sys.executable, os.path.join(ROOT, "tools", tool), "--no-progress", *args]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run(tool: str, *args: str) -> None:
    result = subprocess.run(
        command(tool, *args), env=environment(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


def run_until_sigterm(
    tool: str, args: list[str], out: str, started: Callable[[list[dict[str, Any]]], bool]
) -> None:
    """Start the tool, send SIGTERM once ``started(metrics rows)`` holds, and check it stopped with a
    checkpoint (exit status 128 + 15)."""
    process = subprocess.Popen(
        command(tool, *args), env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 600
        metrics = os.path.join(out, "metrics.jsonl")
        while process.poll() is None and time.monotonic() < deadline:
            if os.path.isfile(metrics) and started(read_metrics(metrics)):
                process.send_signal(signal.SIGTERM)
                break
            time.sleep(0.02)
        _, stderr = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert os.path.isfile(os.path.join(out, "last_checkpoint"))


# ------------------------------------------------------------------------------------------- detector


@pytest.fixture(scope="module")
def detection_data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("detection")
    return make_detection_dataset(
        root, num_train=6, num_val=2, image_size=96, seed=2, max_objects=3, workers=1
    )


def detector_args(data: dict[str, str], out: str, max_iter: int, workers: int) -> list[str]:
    return [
        "--config",
        DETECTOR_CONFIG,
        f"data.train_images={data['train_images']}",
        f"data.train_annotations={data['train_annotations']}",
        f"data.val_images={data['val_images']}",
        f"data.val_annotations={data['val_annotations']}",
        "data.min_size=[80,96]",  # a random size per image
        "data.max_size=96",
        "data.hflip_prob=0.5",
        "data.color_jitter=0.4",
        f"data.num_workers={workers}",
        "test.min_size=96",
        "test.max_size=96",
        "model.backbone.options={width: 8}",
        "model.rpn.anchor_sizes=[16,32,64]",
        "model.roi_heads.batch_size_per_image=32",
        "solver.device=cpu",
        "solver.amp=false",
        "solver.ims_per_batch=2",
        "solver.warmup_iters=1",
        "solver.steps=[2]",
        "solver.base_lr=0.01",
        f"solver.max_iter={max_iter}",
        "solver.log_period=1",
        f"solver.checkpoint_period={MAX_ITER // 2}",
        f"output.dir={out}",
    ]


def detector_losses(out: str) -> dict[int, tuple[float, ...]]:
    return {row["iteration"]: tuple(row[k] for k in LOSSES) for row in read_metrics(out) if "loss_cls" in row}


@pytest.fixture(scope="module")
def detector_straight(detection_data, tmp_path_factory) -> dict[int, tuple[float, ...]]:
    out = str(tmp_path_factory.mktemp("detector_straight"))
    run("train_detector.py", *detector_args(detection_data, out, MAX_ITER, 0))
    losses = detector_losses(out)
    assert sorted(losses) == list(range(1, MAX_ITER + 1))
    return losses


@pytest.mark.parametrize("workers, stop", [(0, "half-way"), (2, "sigterm")])
def test_detector_resumes_with_identical_losses(detection_data, detector_straight, workers, stop, tmp_path):
    """Stopped at the end of a run of half the iterations, or by SIGTERM mid-way; the straight run used no
    workers: the data does not depend on them."""
    out = str(tmp_path / "run")
    args = detector_args(detection_data, out, MAX_ITER, workers)
    if stop == "half-way":
        run("train_detector.py", *detector_args(detection_data, out, MAX_ITER // 2, workers))
    else:
        run_until_sigterm(
            "train_detector.py", args, out, lambda rows: any(r.get("iteration", 0) >= 2 for r in rows)
        )
    stopped_at = max(detector_losses(out))
    assert 2 <= stopped_at < MAX_ITER
    run("train_detector.py", *args, "--resume")
    resumed = detector_losses(out)
    assert sorted(resumed) == list(range(1, MAX_ITER + 1))
    for it in range(1, MAX_ITER + 1):
        assert resumed[it] == detector_straight[it], (it, stopped_at)


# ----------------------------------------------------------------------------------------- classifier


@pytest.fixture(scope="module")
def classification_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("classification")
    make_classification_dataset(root, num_train_per_class=2, num_val_per_class=1, image_size=32, workers=1)
    return str(root)


def classifier_args(root: str, out: str, epochs: int, workers: int) -> list[str]:
    return [
        f"data.root={root}",
        f"output.dir={out}",
        "model.options={width: 8}",
        "data.resize=36",
        "data.crop=28",  # random crops
        "data.hflip=true",
        "data.color_jitter=0.4",
        "data.pca_lighting=0.1",
        f"data.num_workers={workers}",
        "solver.device=cpu",
        "solver.amp=false",
        "solver.batch_size=3",
        f"solver.epochs={epochs}",
        "solver.base_lr=0.02",
        "solver.lr_schedule=step",
        "solver.steps=[2]",
        "solver.warmup_epochs=0",
        "test.batch_size=9",
        "test.ten_crop=false",
    ]


def classifier_result(out: str) -> tuple[dict[int, float], dict[str, torch.Tensor]]:
    """Training loss per epoch and the final weights."""
    losses = {row["epoch"]: row["train_loss"] for row in read_metrics(out) if "train_loss" in row}
    weights = torch.load(os.path.join(out, "model_final.pth"), map_location="cpu", weights_only=True)["model"]
    return losses, weights


def assert_same_training(resumed: str, straight: tuple[dict[int, float], dict[str, torch.Tensor]]) -> None:
    losses, weights = classifier_result(resumed)
    assert sorted(losses) == list(range(1, EPOCHS + 1))
    assert losses == straight[0]
    for key, value in straight[1].items():
        assert torch.equal(weights[key], value), key


@pytest.fixture(scope="module")
def classifier_straight(classification_root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("classifier_straight"))
    run("train_classifier.py", *classifier_args(classification_root, out, EPOCHS, 0))
    return classifier_result(out)


@pytest.mark.parametrize("workers, stop", [(0, "after-epoch-1"), (2, "sigterm")])
def test_classifier_resumes_with_identical_losses(
    classification_root, classifier_straight, workers, stop, tmp_path
):
    """Stopped at the end of a one-epoch run, or by SIGTERM in the second epoch (6 iterations an epoch)."""
    out = str(tmp_path / "run")
    args = classifier_args(classification_root, out, EPOCHS, workers)
    if stop == "after-epoch-1":
        run("train_classifier.py", *classifier_args(classification_root, out, 1, workers))
    else:  # once the first epoch's line is written
        run_until_sigterm("train_classifier.py", args, out, lambda rows: any("train_loss" in r for r in rows))
    run("train_classifier.py", *args, "--resume")
    assert_same_training(out, classifier_straight)
