"""Fast R-CNN end to end on a tiny synthetic set: selective search proposals from tools/compute_proposals.py,
training and COCO evaluation with them (images without proposals included), the train/evaluate tools, and
the truncated SVD of the region head's fc layers (shapes, exactness at full rank, closeness)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import torch
from helpers.tools import load_tool
from torch import nn

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig
from rcnn.data.collate import collate_detection
from rcnn.data.synthetic import make_detection_dataset
from rcnn.detectors.build import build_detector
from rcnn.engine.logging import read_metrics
from rcnn.modeling.svd import TruncatedSVDLinear, compress_box_head, truncated_svd_linear
from rcnn.tasks.detection import build_detection_dataset, evaluate_detector

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "fast_rcnn", "synthetic_resnet18.yaml")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    """6 train / 3 val synthetic images of 96 px and their selective search proposals (both splits)."""
    root = tmp_path_factory.mktemp("fast_rcnn")
    data = make_detection_dataset(
        root, num_train=6, num_val=3, image_size=96, seed=2, max_objects=3, workers=1
    )
    args = [
        "--config", CONFIG, "--workers", "1", "--no-progress", "--output", str(root / "proposals"),
        *(f"data.{k}={v}" for k, v in data.items()), "proposals.mode=single",
    ]  # fmt: skip
    assert load_tool("compute_proposals").main(args) == 0
    return {
        **data,
        "train_proposals": str(root / "proposals/train"),
        "val_proposals": str(root / "proposals/val"),
    }


def small_config(data: dict[str, str], **proposals: str) -> DetectionConfig:
    overrides = [f"data.{k}={v}" for k, v in {**data, **proposals}.items()]
    overrides += ["data.min_size=[96]", "data.max_size=96", "test.min_size=96", "test.max_size=96",
                  "model.backbone.options={width: 8}", "model.roi_heads.batch_size_per_image=32"]  # fmt: skip
    return load_config(CONFIG, DetectionConfig, overrides)


def test_training_and_evaluation_with_proposals(data, tmp_path, make_detector):
    """Images without proposals: trained on their ground truth; evaluated to zero detections."""
    empty = {}
    for split in ("train", "val"):
        empty[split] = str(tmp_path / split)
        shutil.copytree(data[f"{split}_proposals"], empty[split])
    train_ids = [img["id"] for img in json.load(open(data["train_annotations"]))["images"]]
    val_ids = [img["id"] for img in json.load(open(data["val_annotations"]))["images"]]
    np.save(os.path.join(empty["train"], f"{train_ids[0]}.npy"), np.zeros((0, 4), np.float32))
    np.save(os.path.join(empty["val"], f"{val_ids[1]}.npy"), np.zeros((0, 4), np.float32))
    cfg = small_config(data, train_proposals=empty["train"], val_proposals=empty["val"])
    torch.manual_seed(0)
    train_set, val_set = build_detection_dataset(cfg, "train"), build_detection_dataset(cfg, "val")
    model = make_detector(train_set.num_classes, rpn=False)  # a tiny trunk (stride 8) and fc head

    images, targets = collate_detection([train_set[i] for i in range(len(train_set))])
    assert targets[0]["proposals"].shape == (0, 4) and len(targets[1]["proposals"]) > 0
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.02, momentum=0.9)
    model.train()
    history = []
    for step in range(12):
        batch = [(step * 2 + k) % len(images) for k in range(2)]
        losses = model([images[i] for i in batch], [targets[i] for i in batch])
        assert set(losses) == {"loss_cls", "loss_box"}  # no RPN
        total = sum(losses.values())
        assert torch.isfinite(total)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(float(losses["loss_cls"].detach()))
    assert np.mean(history[-3:]) < np.mean(history[:3])  # the classifier learns from the sampled RoIs

    model.roi_heads.score_thresh = 0.0  # keep every detection: only the empty image may have none
    metrics = evaluate_detector(model, val_set, torch.device("cpu"), str(tmp_path / "eval"), progress=False)
    assert {"AP", "AP50", "per_category"} <= set(metrics) and 0.0 <= metrics["AP"] <= 1.0
    detected = {d["image_id"] for d in json.load(open(tmp_path / "eval" / "detections.json"))}
    assert detected == set(val_ids) - {val_ids[1]}  # no proposals, no detections


def test_train_and_evaluate_tools(data, tmp_path, capsys):
    train_detector, evaluate = load_tool("train_detector"), load_tool("evaluate")
    out = str(tmp_path / "run")
    overrides = [f"data.{k}={v}" for k, v in data.items()] + [
        "data.min_size=[96]", "data.max_size=96", "data.num_workers=0", "test.min_size=96",
        "test.max_size=96", "model.backbone.options={width: 8}", "model.roi_heads.batch_size_per_image=32",
        "solver.device=cpu", "solver.ims_per_batch=2", "solver.warmup_iters=2", "solver.max_iter=5",
        "solver.steps=[]", "solver.log_period=1", "solver.checkpoint_period=5", f"output.dir={out}",
    ]  # fmt: skip
    assert train_detector.main(["--config", CONFIG, "--no-progress", *overrides]) == 0
    rows = [r for r in read_metrics(out) if "loss_cls" in r]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4, 5]
    assert not any("loss_rpn_cls" in r for r in rows)
    trained = json.load(open(os.path.join(out, "metrics.json")))
    assert 0.0 <= trained["AP"] <= 1.0

    args = [
        "--config",
        os.path.join(out, "config.yaml"),
        "--checkpoint",
        os.path.join(out, "model_final.pth"),
    ]
    assert evaluate.main([*args, "--output", str(tmp_path / "eval")]) == 0
    again = json.load(open(tmp_path / "eval" / "metrics.json"))
    assert again["AP"] == pytest.approx(trained["AP"], abs=1e-6)

    no_proposals = [o for o in overrides if not o.startswith("data.train_proposals")] + [
        "data.train_proposals="
    ]
    assert train_detector.main(["--config", CONFIG, "--no-progress", *no_proposals]) == 2


# ------------------------------------------------------------------------------------------ truncated SVD


def test_truncated_svd_linear_is_the_best_low_rank_approximation():
    torch.manual_seed(0)
    linear = nn.Linear(48, 32)
    x = torch.randn(10, 48)
    full = truncated_svd_linear(linear, 32)
    assert isinstance(full, nn.Sequential) and full.rank == 32
    torch.testing.assert_close(full(x), linear(x), atol=1e-5, rtol=1e-5)  # exact at min(u, v)

    low = truncated_svd_linear(linear, 8)
    first, second = low
    assert first.weight.shape == (8, 48) and first.bias is None
    assert second.weight.shape == (32, 8)
    torch.testing.assert_close(second.bias, linear.bias)
    with torch.no_grad():
        singular = torch.linalg.svdvals(linear.weight.double())
        error = torch.linalg.matrix_norm(second.weight @ first.weight - linear.weight).double()
    assert float(error**2) == pytest.approx(float((singular[8:] ** 2).sum()), rel=1e-4)  # Eckart-Young
    for bad in (0, 33):
        with pytest.raises(ValueError, match=r"rank must be in \[1, 32\] for a 48 -> 32 layer"):
            truncated_svd_linear(linear, bad)


def test_compress_box_head_shapes_and_detections(make_detector, two_images):
    torch.manual_seed(0)
    model = make_detector(2, rpn=False).eval()  # box head: Flatten, Linear(512 -> 64), ReLU
    images, _ = two_images
    proposals = [torch.tensor([[8.0, 10, 36, 42], [40, 18, 74, 48], [0, 0, 60, 50]]),
                 torch.tensor([[14.0, 16, 48, 40], [5, 5, 30, 30]])]  # fmt: skip
    fc = model.roi_heads.box_head.layers[1]
    # plant a rank-12 weight: rank 16 keeps it, so the compressed head is the same function
    with torch.no_grad():
        fc.weight.copy_(torch.randn(64, 12) @ torch.randn(12, 512) * 0.02)
    model.roi_heads.score_thresh = 0.0
    with torch.no_grad():
        before = model(images, proposals=proposals)
    n_params = sum(p.numel() for p in model.parameters())

    replaced = compress_box_head(model, 16)
    assert replaced == {"box_head.layers.1": (512, 16, 64)}  # the predictor's 64 -> 3 / 8 layers gain nothing
    first, second = model.roi_heads.box_head.layers[1]
    assert first.weight.shape == (16, 512) and second.weight.shape == (64, 16)
    assert sum(p.numel() for p in model.parameters()) == n_params - 512 * 64 + 16 * (512 + 64)
    with torch.no_grad():
        after = model(images, proposals=proposals)
    for a, b in zip(before, after):
        torch.testing.assert_close(a["boxes"], b["boxes"], atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(a["scores"], b["scores"], atol=1e-4, rtol=1e-4)
        assert torch.equal(a["labels"], b["labels"])
    assert compress_box_head(model, 16) == {}  # already factored: left alone
    assert isinstance(model.roi_heads.box_head.layers[1], TruncatedSVDLinear)


def test_compress_box_head_by_name_and_errors(make_detector, make_config):
    model = make_detector(2, rpn=False)
    replaced = compress_box_head(model, {"box_head.layers.1": 20, "predictor.bbox_pred": 4})
    assert replaced == {"box_head.layers.1": (512, 20, 64), "predictor.bbox_pred": (64, 4, 8)}
    with pytest.raises(ValueError, match="not fully connected layers of the region head: \\['fc9'\\]"):
        compress_box_head(make_detector(2, rpn=False), {"fc9": 3})
    cfg = make_config()
    cfg.type, cfg.backbone.name, cfg.backbone.options = "fast_rcnn", "resnet18", {"width": 8}
    with pytest.raises(ValueError, match="no fully connected layer .*Conv2d"):
        compress_box_head(build_detector(cfg, 2), 16)  # ResNet C4: res5 convolutions + pooling
