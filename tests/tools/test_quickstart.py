"""The main job (tools/quickstart.py) shortened: a tiny synthetic set, a short classifier pretraining, a short
Faster R-CNN training. Checks every step's outputs, that the detector's loss falls and that its COCO AP50 is
clearly above zero."""

from __future__ import annotations

import json
import os

import pytest
from helpers.tools import load_tool

from rcnn.engine.logging import read_metrics

LOSSES = ("loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("quickstart"))
    size = 128
    args = [
        "--output", os.path.join(out, "run"), "--data", os.path.join(out, "data"),
        "--num-train", "96", "--num-val", "48", "--image-size", str(size), "--cls-per-class", "60",
        "--cls-image-size", "72",
        "--num-drawn", "2",
        "--classifier", "solver.epochs=6", "data.num_workers=0",
        "--detector", f"data.min_size=[{size}]", f"data.max_size={size}", f"test.min_size={size}",
        f"test.max_size={size}", "data.num_workers=0", "model.rpn.anchor_sizes=[16,32,64,128]",
        "solver.max_iter=400", "solver.steps=[320]",
        "solver.checkpoint_period=400", "solver.log_period=10",
    ]  # fmt: skip
    assert load_tool("quickstart").main(args) == 0
    return os.path.join(out, "run")


def test_every_step_leaves_its_outputs(run):
    for path in (
        "classifier/model_final.pth",
        "classifier/final_metrics.json",
        "detector/model_final.pth",
        "detector/metrics.json",
        "detector/config.yaml",
        "infer/detections.json",
        "summary.json",
    ):
        assert os.path.isfile(os.path.join(run, path)), path
    drawn = [n for n in os.listdir(os.path.join(run, "infer")) if n.endswith(".png")]
    assert len(drawn) == 2
    with open(os.path.join(run, "summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    assert set(summary["seconds"]) == {"data", "classifier", "detector", "infer"}
    with open(os.path.join(run, "infer", "detections.json"), encoding="utf-8") as f:
        detections = json.load(f)
    assert all({"image_id", "category_id", "bbox", "score"} <= set(d) for d in detections)


def test_detector_loss_falls(run):
    rows = [r for r in read_metrics(os.path.join(run, "detector")) if "loss_cls" in r]
    totals = [sum(r[k] for k in LOSSES) for r in rows]
    assert len(totals) >= 10
    first, last = totals[:3], totals[-3:]
    assert sum(last) / 3 < 0.6 * sum(first) / 3, totals


def test_detector_ap50_clearly_above_zero(run):
    with open(os.path.join(run, "summary.json"), encoding="utf-8") as f:
        detector = json.load(f)["detector"]
    with open(os.path.join(run, "detector", "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    assert detector["AP50"] == pytest.approx(metrics["AP50"])
    # 96 training images and 400 iterations generalise poorly (AP50 0.11 in a run of this size; 0.08-0.14 in
    # the runs of 600 iterations): the bound asks for detections that were learned, not a figure.
    assert detector["AP50"] > 0.04, detector


def test_an_earlier_job_is_never_trained_over(tmp_path, capsys):
    detector = tmp_path / "run" / "detector"
    detector.mkdir(parents=True)
    (detector / "metrics.jsonl").write_text('{"iteration": 1}\n')
    args = ["--output", str(tmp_path / "run"), "--data", str(tmp_path / "data")]
    assert load_tool("quickstart").main(args) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "detector" in line and "--overwrite" in line and "--output" in line
    assert (detector / "metrics.jsonl").read_text() == '{"iteration": 1}\n'
    assert not (tmp_path / "data").exists()  # stopped before the first step
