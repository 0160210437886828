"""R-CNN (model.type: rcnn) end to end through the tools: selective search proposals, the staged training
of tools/train_detector.py (fine-tune, feature cache, SVMs, box regression, COCO evaluation), a second run
that reuses the finished stages, and tools/evaluate.py on the saved model."""

from __future__ import annotations

import json
import os

import pytest
import torch
from helpers.tools import load_tool

from rcnn.data.synthetic import make_detection_dataset
from rcnn.engine.logging import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "rcnn", "synthetic_resnet18.yaml")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("rcnn")
    data = make_detection_dataset(
        root, num_train=6, num_val=3, image_size=96, seed=3, max_objects=3, workers=1
    )
    args = [
        "--config", CONFIG, "--workers", "1", "--no-progress", "--output", str(root / "proposals"),
        *(f"data.{k}={v}" for k, v in data.items()), "proposals.mode=single",
    ]  # fmt: skip
    assert load_tool("compute_proposals").main(args) == 0
    out = str(root / "run")
    overrides = [f"data.{k}={v}" for k, v in data.items()] + [
        f"data.train_proposals={root / 'proposals' / 'train'}",
        f"data.val_proposals={root / 'proposals' / 'val'}",
        "data.min_size=[96]", "data.max_size=96", "data.num_workers=0", "test.min_size=96",
        "test.max_size=96", "model.backbone.options={width: 8}", "model.rcnn.max_proposals=60",
        "model.rcnn.batch_pos=8", "model.rcnn.batch_neg=24", "model.rcnn.chunk_size=64",
        "model.rcnn.svm_init_negatives=100", "model.rcnn.hard_negative_rounds=1", "model.rcnn.batch_size=64",
        "solver.device=cpu", "solver.warmup_iters=1", "solver.max_iter=3", "solver.steps=[2]",
        "solver.log_period=1", "solver.checkpoint_period=3", f"output.dir={out}",
    ]  # fmt: skip
    torch.manual_seed(0)
    assert load_tool("train_detector").main(["--config", CONFIG, "--no-progress", *overrides]) == 0
    return {"out": out, "overrides": overrides, "val": data["val_annotations"]}


def test_every_stage_leaves_its_outputs(run):
    out = run["out"]
    outputs = (
        "config.yaml",
        "finetune/model_final.pth",
        "model_final.pth",
        "metrics.json",
        "detections.json",
    )
    for path in outputs:
        assert os.path.isfile(os.path.join(out, path)), path
    rows = [r for r in read_metrics(os.path.join(out, "finetune")) if "loss_cls" in r]
    assert [r["iteration"] for r in rows] == [1, 2, 3]  # the fine-tuning stage ran on the engine
    chunks = [n for n in os.listdir(os.path.join(out, "features")) if n.startswith("chunk_")]
    assert len(chunks) >= 2  # 6 images of up to 60 proposals + gt, 64 rows a chunk: streamed in chunks
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert 0.0 <= metrics["AP"] <= 1.0 and "per_category" in metrics
    state = torch.load(os.path.join(out, "model_final.pth"), map_location="cpu", weights_only=False)
    assert any("svm" in key for key in state["model"]), sorted(state["model"])[:10]
    val_ids = {img["id"] for img in json.load(open(run["val"]))["images"]}
    detections = json.load(open(os.path.join(out, "detections.json")))
    assert {d["image_id"] for d in detections} <= val_ids
    assert all({"image_id", "category_id", "bbox", "score"} <= set(d) for d in detections)


def test_second_run_reuses_the_finished_stages(run, caplog):
    out = run["out"]
    features = os.path.join(out, "features")
    before = {n: os.path.getmtime(os.path.join(features, n)) for n in os.listdir(features)}
    finetuned = os.path.getmtime(os.path.join(out, "finetune", "model_final.pth"))
    first = json.load(open(os.path.join(out, "metrics.json")))
    with caplog.at_level("INFO"):
        # a run in a folder that holds one continues it (--resume), never silently over it
        tool = load_tool("train_detector")
        assert tool.main(["--config", CONFIG, "--no-progress", "--resume", *run["overrides"]]) == 0
    assert "fine-tuning already done" in caplog.text and "is complete" in caplog.text
    assert os.path.getmtime(os.path.join(out, "finetune", "model_final.pth")) == finetuned
    assert {n: os.path.getmtime(os.path.join(features, n)) for n in os.listdir(features)} == before
    again = json.load(open(os.path.join(out, "metrics.json")))
    assert again["AP"] == pytest.approx(first["AP"])  # same cache, same seeds: the same detector


def test_evaluate_tool_loads_the_saved_rcnn(run, tmp_path):
    out = str(tmp_path / "eval")
    overrides = [o for o in run["overrides"] if not o.startswith("output.dir=")] + [f"output.dir={out}"]
    checkpoint = os.path.join(run["out"], "model_final.pth")
    assert load_tool("evaluate").main(["--config", CONFIG, "--checkpoint", checkpoint, *overrides]) == 0
    metrics = json.load(open(os.path.join(out, "eval", "metrics.json")))  # evaluate's own folder
    trained = json.load(open(os.path.join(run["out"], "metrics.json")))
    assert metrics["AP"] == pytest.approx(trained["AP"])
