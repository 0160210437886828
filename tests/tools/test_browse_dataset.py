"""tools/browse_dataset.py in a subprocess on a tiny generated set: drawn images, stats.json, stats.png."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import pytest

from rcnn.data.synthetic import make_detection_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")
FPN_CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18_fpn.yaml")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("synthetic")
    return make_detection_dataset(
        root, num_train=4, num_val=2, image_size=64, seed=3, max_objects=3, workers=1
    )


def browse(data, out, *options, more_overrides=(), config=CONFIG) -> subprocess.CompletedProcess:
    overrides = [
        f"data.train_images={data['train_images']}", f"data.train_annotations={data['train_annotations']}",
        f"data.val_images={data['val_images']}", f"data.val_annotations={data['val_annotations']}",
        "data.min_size=[128]", "data.max_size=128", "data.hflip_prob=1.0",
    ]  # fmt: skip
    cmd = [sys.executable, os.path.join(ROOT, "tools", "browse_dataset.py"), "--config", config,
           "--output", str(out), *options, *overrides, *more_overrides]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_browse_writes_pictures_stats_and_the_anchor_fit(data, tmp_path):
    out = tmp_path / "browse"
    proc = browse(data, out, "--after-transforms", "--num", "3")
    assert proc.returncode == 0, proc.stderr
    images = sorted(os.listdir(out / "images"))
    assert len(images) == 3
    drawn = cv2.imread(str(out / "images" / images[0]))
    assert drawn.shape == (128, 128, 3)  # as the model receives it: resized from 64 to 128
    stats = json.load(open(out / "stats.json"))
    annotations = json.load(open(data["train_annotations"]))
    assert stats["images"] == 4 and stats["boxes"] == len(annotations["annotations"])
    assert sum(c["boxes"] for c in stats["classes"].values()) == stats["boxes"]
    fit = stats["anchor_fit"]
    assert fit["all"]["boxes"] == stats["boxes"] and fit["strides"] == [8]
    assert sum(r["boxes"] for r in fit["by_size"]) == stats["boxes"]
    assert 0.0 <= fit["all"]["iou<0.3"] <= 1.0 and fit["advice"] in proc.stdout
    picture = cv2.imread(str(out / "stats.png"))
    assert picture.shape == (720, 1500, 3) and picture.std() > 0


def test_browse_raw_val_images_and_a_bad_path(data, tmp_path):
    proc = browse(data, tmp_path / "val", "--split", "val")
    assert proc.returncode == 0, proc.stderr
    assert cv2.imread(str(next((tmp_path / "val" / "images").iterdir()))).shape == (64, 64, 3)
    fpn = json.load(open(tmp_path / "val" / "stats.json"))["anchor_fit"]
    assert fpn["strides"] == [8]
    proc = browse(data, tmp_path / "fpn", "--split", "val", "--num", "1", config=FPN_CONFIG)
    assert proc.returncode == 0, proc.stderr
    fit = json.load(open(tmp_path / "fpn" / "stats.json"))["anchor_fit"]
    assert fit["strides"] == [8, 16, 32, 64]  # P3-P6: each anchor size at its own level's stride
    bad = browse(
        data, tmp_path / "bad", "--split", "val", more_overrides=["data.val_annotations=/nonexistent.json"]
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: ") and "Traceback" not in bad.stderr
