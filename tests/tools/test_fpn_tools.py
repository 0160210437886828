"""The FPN detector through the tools: one training iteration with configs/faster_rcnn/
synthetic_resnet18_fpn.yaml on a tiny generated set, then tools/evaluate.py on its checkpoint."""

from __future__ import annotations

import json
import os

import torch
from helpers.tools import load_tool

from rcnn.data.synthetic import make_detection_dataset
from rcnn.engine.logging import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18_fpn.yaml")

train_detector = load_tool("train_detector")
evaluate = load_tool("evaluate")


def test_fpn_trains_one_iteration_and_evaluates(tmp_path):
    data = make_detection_dataset(
        tmp_path / "data", num_train=2, num_val=2, image_size=96, seed=1, max_objects=3, workers=1
    )
    out = str(tmp_path / "run")
    overrides = [
        *(f"data.{key}={value}" for key, value in data.items()),
        "data.min_size=[96]",
        "data.max_size=96",
        "data.num_workers=0",
        "test.min_size=96",
        "test.max_size=96",
        "model.backbone.options={width: 8}",
        "model.fpn.out_channels=16",
        "model.fpn.representation_size=32",
        "solver.device=cpu",
        "solver.ims_per_batch=2",
        "solver.warmup_iters=1",
        "solver.max_iter=1",
        "solver.steps=[]",
        "solver.log_period=1",
        f"output.dir={out}",
    ]
    assert train_detector.main(["--config", CONFIG, "--no-progress", *overrides]) == 0
    rows = [r for r in read_metrics(out) if "loss_cls" in r]
    assert len(rows) == 1
    assert all(torch.isfinite(torch.tensor(rows[0][k])) for k in ("loss_rpn_cls", "loss_rpn_box", "loss_cls"))
    checkpoint = os.path.join(out, "model_final.pth")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
    assert "backbone.inner_blocks.0.weight" in state and "roi_heads.box_head.fc6.weight" in state
    eval_dir = str(tmp_path / "eval")
    args = ["--config", CONFIG, "--checkpoint", checkpoint, "--output", eval_dir, *overrides]
    assert evaluate.main(args) == 0
    metrics = json.load(open(os.path.join(eval_dir, "metrics.json")))
    assert 0.0 <= metrics["AP"] <= 1.0
