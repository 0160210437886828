"""tools/train_detector.py, evaluate.py (--config mode) and infer.py end to end on a tiny synthetic set:
outputs, exact resume, bad input, the COCO evaluation and the drawn detections."""

from __future__ import annotations

import json
import os

import pytest
import torch
from helpers.tools import load_tool

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig
from rcnn.data.synthetic import make_detection_dataset
from rcnn.engine.logging import read_metrics
from rcnn.tasks.detection import load_detector

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")
LOSSES = ("loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box")


train_detector = load_tool("train_detector")
evaluate = load_tool("evaluate")
infer = load_tool("infer")
export = load_tool("export")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("synthetic")
    return make_detection_dataset(
        root, num_train=6, num_val=3, image_size=96, seed=1, max_objects=3, workers=1
    )


def overrides(data: dict[str, str], out: str, max_iter: int) -> list[str]:
    return [
        f"data.train_images={data['train_images']}",
        f"data.train_annotations={data['train_annotations']}",
        f"data.val_images={data['val_images']}",
        f"data.val_annotations={data['val_annotations']}",
        "data.min_size=[96]",
        "data.max_size=96",
        "data.num_workers=0",
        "test.min_size=96",
        "test.max_size=96",
        "model.backbone.options={width: 8}",
        "model.rpn.anchor_sizes=[16,32,64]",
        "model.roi_heads.batch_size_per_image=32",
        "solver.device=cpu",
        "solver.ims_per_batch=2",
        "solver.warmup_iters=2",
        "solver.base_lr=0.01",
        f"solver.max_iter={max_iter}",
        "solver.steps=[]",
        "solver.log_period=1",
        "solver.checkpoint_period=2",
        f"output.dir={out}",
    ]


def losses_by_iteration(out: str) -> dict[int, tuple[float, ...]]:
    return {row["iteration"]: tuple(row[k] for k in LOSSES) for row in read_metrics(out) if "loss_cls" in row}


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("straight"))
    assert train_detector.main(["--config", CONFIG, "--no-progress", *overrides(data, out, 4)]) == 0
    return out


def test_training_writes_the_run_outputs(trained):
    for name in ("config.yaml", "model_final.pth", "last_checkpoint", "metrics.jsonl", "metrics.json"):
        assert os.path.isfile(os.path.join(trained, name)), name
    # the saved config repeats the run exactly
    cfg = load_config(os.path.join(trained, "config.yaml"), DetectionConfig)
    assert cfg.solver.max_iter == 4 and cfg.model.backbone.options == {"width": 8}
    metrics = json.load(open(os.path.join(trained, "metrics.json")))
    assert {"AP", "AP50", "AP75", "per_category"} <= set(metrics)
    assert 0.0 <= metrics["AP"] <= 1.0
    losses = losses_by_iteration(trained)
    assert sorted(losses) == [1, 2, 3, 4]
    assert all(torch.isfinite(torch.tensor(v)).all() for v in losses.values())
    checkpoint = torch.load(os.path.join(trained, "model_final.pth"), map_location="cpu", weights_only=False)
    assert checkpoint["extra"]["metadata"]["class_names"][:2] == ["circle", "square"]


def test_resume_continues_with_identical_losses(data, trained, tmp_path):
    out = str(tmp_path / "resumed")
    assert train_detector.main(["--config", CONFIG, "--no-progress", *overrides(data, out, 2)]) == 0
    args = ["--config", CONFIG, "--no-progress", "--resume", *overrides(data, out, 4)]
    assert train_detector.main(args) == 0
    straight, resumed = losses_by_iteration(trained), losses_by_iteration(out)
    assert sorted(resumed) == [1, 2, 3, 4]
    for it in (3, 4):
        assert resumed[it] == pytest.approx(straight[it], rel=1e-5, abs=1e-6), it


def test_channels_last_training_follows_the_default_layout(data, tmp_path):
    """solver.channels_last: the same run in NHWC (fp32 here: losses equal to float rounding), whose
    checkpoint loads into a model of the default layout."""
    runs = {}
    for name, extra in (("nchw", ["solver.channels_last=false"]), ("nhwc", ["solver.channels_last=true"])):
        out = str(tmp_path / name)
        args = ["--config", CONFIG, "--no-progress", *overrides(data, out, 3), "solver.amp=false", *extra]
        assert train_detector.main(args) == 0
        runs[name] = out
    nchw, nhwc = losses_by_iteration(runs["nchw"]), losses_by_iteration(runs["nhwc"])
    assert sorted(nhwc) == [1, 2, 3]
    for it in (1, 2, 3):
        assert nhwc[it] == pytest.approx(nchw[it], rel=1e-3, abs=1e-5), it
    cfg = load_config(os.path.join(runs["nhwc"], "config.yaml"), DetectionConfig)
    assert cfg.solver.channels_last is True
    for name, expect_nhwc in (("nchw", False), ("nhwc", True)):  # the trained weights kept their layout
        state = torch.load(
            os.path.join(runs[name], "model_final.pth"), map_location="cpu", weights_only=False
        )
        convs = [w for w in state["model"].values() if w.dim() == 4 and w.shape[1] > 1 and w.shape[2] > 1]
        assert convs and all(w.is_contiguous() != expect_nhwc for w in convs), name
    model, _ = load_detector(cfg, os.path.join(runs["nhwc"], "model_final.pth"), torch.device("cpu"))
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()  # built in the default layout; the NHWC weights loaded into it


def test_missing_resume_file_is_an_error_not_a_fresh_start(data, tmp_path):
    out = str(tmp_path / "fresh")
    args = [
        "--config",
        CONFIG,
        "--no-progress",
        "--resume",
        str(tmp_path / "nope.pth"),
        *overrides(data, out, 2),
    ]
    assert train_detector.main(args) == 2
    assert not os.path.exists(os.path.join(out, "model_final.pth"))


def test_bad_config_key_and_missing_dataset_exit_2(data, tmp_path, capsys):
    out = str(tmp_path / "bad")
    assert train_detector.main(["--config", CONFIG, *overrides(data, out, 1), "solver.base_lrr=1"]) == 2
    assert "base_lr" in capsys.readouterr().err
    missing = str(tmp_path / "missing.json")
    assert (
        train_detector.main(
            ["--config", CONFIG, *overrides(data, out, 1), f"data.train_annotations={missing}"]
        )
        == 2
    )


def test_evaluate_config_mode_matches_training_metrics(data, trained, tmp_path):
    out = str(tmp_path / "eval")
    args = [
        "--config",
        os.path.join(trained, "config.yaml"),
        "--checkpoint",
        os.path.join(trained, "model_final.pth"),
    ]
    assert evaluate.main([*args, "--output", out]) == 0
    again = json.load(open(os.path.join(out, "metrics.json")))
    during_training = json.load(open(os.path.join(trained, "metrics.json")))
    assert again["AP"] == pytest.approx(during_training["AP"], abs=1e-6)
    assert os.path.isfile(os.path.join(out, "detections.json"))


def test_infer_draws_images_and_writes_coco_results(data, trained, tmp_path, capsys):
    out = tmp_path / "infer"
    args = [
        "--config", os.path.join(trained, "config.yaml"),
        "--checkpoint", os.path.join(trained, "model_final.pth"),
        "--input", data["val_images"], "--output", str(out), "--score-threshold", "0.0",
    ]  # fmt: skip
    assert infer.main(args) == 0
    drawn = sorted(p for p in os.listdir(out) if p.endswith(".png"))
    assert drawn == sorted(os.listdir(data["val_images"]))
    results = json.load(open(out / "detections.json"))
    for r in results:
        assert {"image_id", "file_name", "category_id", "category_name", "bbox", "score"} <= set(r)
        assert r["bbox"][2] >= 0 and r["bbox"][3] >= 0 and 1 <= r["category_id"] <= 9
    capsys.readouterr()
    assert infer.main([*args[:4], "--input", str(tmp_path / "nothing*.png"), "--output", str(out)]) == 2
    assert "no images" in capsys.readouterr().err


def test_export_then_onnxruntime_infer_writes_the_same_results(data, trained, tmp_path, capsys):
    """tools/export.py, then tools/infer.py --backend onnxruntime: the same drawn files and detections
    as the PyTorch backend (boxes to the 0.01 px of the JSON, scores to 1e-4); an existing output file is
    never written over."""
    onnx_file = str(tmp_path / "model.onnx")
    config = os.path.join(trained, "config.yaml")
    checkpoint = os.path.join(trained, "model_final.pth")
    assert export.main(["--config", config, "--checkpoint", checkpoint, "--output", onnx_file]) == 0
    before = os.path.getmtime(onnx_file)
    capsys.readouterr()
    assert export.main(["--config", config, "--checkpoint", checkpoint, "--output", onnx_file]) == 2
    assert "exists" in capsys.readouterr().err and os.path.getmtime(onnx_file) == before

    common = ["--input", data["val_images"], "--score-threshold", "0.0"]
    eager_out, onnx_out = tmp_path / "eager", tmp_path / "onnx"
    assert (
        infer.main(["--config", config, "--checkpoint", checkpoint, *common, "--output", str(eager_out)]) == 0
    )
    assert (
        infer.main(["--backend", "onnxruntime", "--model", onnx_file, *common, "--output", str(onnx_out)])
        == 0
    )
    assert sorted(os.listdir(onnx_out)) == sorted(os.listdir(eager_out))
    eager = json.load(open(eager_out / "detections.json"))
    got = json.load(open(onnx_out / "detections.json"))
    assert len(got) == len(eager) > 0
    for a, b in zip(got, eager):
        assert (a["file_name"], a["category_id"], a["category_name"]) == (
            b["file_name"], b["category_id"], b["category_name"]
        )  # fmt: skip
        assert a["bbox"] == pytest.approx(b["bbox"], abs=0.011) and a["score"] == pytest.approx(
            b["score"], abs=2e-4
        )
