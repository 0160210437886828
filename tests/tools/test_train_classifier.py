"""tools/train_classifier.py end to end on a tiny synthetic ImageFolder set: outputs, resume, and the
trained classifier loaded as a detector backbone."""

from __future__ import annotations

import json
import os
import shutil
import warnings

import pytest
import torch
from helpers.tools import load_tool

import backbones
from rcnn.config import load_config
from rcnn.config_schema import ClassificationConfig
from rcnn.data.synthetic import make_classification_dataset
from rcnn.engine.checkpoint import Checkpointer
from rcnn.engine.logging import read_metrics
from rcnn.utils.io import load_checkpoint

train_classifier = load_tool("train_classifier")


def tool_args(data_root: str, out: str, epochs: int, *extra: str) -> list[str]:
    return [
        "--no-progress",
        f"data.root={data_root}",
        f"output.dir={out}",
        "model.options={width: 8}",
        "data.resize=36",
        "data.crop=32",
        "data.num_workers=0",
        "solver.device=cpu",
        "solver.batch_size=9",
        f"solver.epochs={epochs}",
        "solver.base_lr=0.05",
        "solver.lr_schedule=step",
        "solver.steps=[1]",  # the lr drops after epoch 1: resuming must restore the schedule
        "solver.warmup_epochs=0",
        "test.batch_size=8",
        *extra,
    ]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("cls")
    make_classification_dataset(root, num_train_per_class=3, num_val_per_class=1, image_size=32, workers=1)
    return str(root)


@pytest.fixture(scope="module")
def one_epoch(data_root, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("run") / "out")
    assert train_classifier.main(tool_args(data_root, out, 1)) == 0
    return out


def test_one_epoch_writes_config_checkpoints_metrics(one_epoch, data_root):
    files = set(os.listdir(one_epoch))
    assert {"config.yaml", "checkpoint_0001.pth", "last_checkpoint", "metrics.jsonl", "log.txt"} <= files
    assert {"model_final.pth", "final_metrics.json"} <= files
    assert not [f for f in files if f.endswith(".tmp")]

    cfg = load_config(os.path.join(one_epoch, "config.yaml"), ClassificationConfig)
    assert cfg.data.root == data_root and cfg.solver.epochs == 1 and cfg.model.options == {"width": 8}

    assert Checkpointer(one_epoch).latest() == os.path.join(one_epoch, "checkpoint_0001.pth")
    ckpt = load_checkpoint(os.path.join(one_epoch, "checkpoint_0001.pth"))
    assert ckpt["epoch"] == 1 and ckpt["name"] == "resnet18" and ckpt["num_classes"] == 9
    assert {"model", "options", "classes", "optimizer", "scheduler", "rng"} <= set(ckpt)
    assert ckpt["classes"] == sorted(os.listdir(os.path.join(data_root, "train")))

    final = torch.load(os.path.join(one_epoch, "model_final.pth"), weights_only=True)
    assert set(final) == {"model", "name", "num_classes", "options", "classes"}
    for key, value in final["model"].items():
        assert torch.equal(value, ckpt["model"][key])

    records = read_metrics(one_epoch)
    assert [r["epoch"] for r in records] == [1, 1]  # the epoch line, then the 10-crop line
    epoch = records[0]
    for key in ("train_loss", "lr", "val_top1_err", "val_top5_err", "val_loss", "data_time_share"):
        assert key in epoch
    assert 0.0 <= epoch["data_time_share"] <= 1.0
    assert 0.0 <= records[1]["val10_top1_err"] <= 1.0

    with open(os.path.join(one_epoch, "final_metrics.json"), encoding="utf-8") as f:
        summary = json.load(f)
    assert summary["epoch"] == 1
    assert summary["val_top1_err"] == epoch["val_top1_err"]
    assert {"val10_top1_err", "val10_top5_err", "data_time_share", "train_time_s"} <= set(summary)


def test_classifier_loads_as_detector_backbone(one_epoch):
    final = torch.load(os.path.join(one_epoch, "model_final.pth"), weights_only=True)
    # 9 classes vs the builder's 1000: the cut trunk never uses fc, so no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trunk = backbones.build_backbone(
            final["name"], weights=os.path.join(one_epoch, "model_final.pth"), **final["options"]
        )
    stem_names = {"0": "conv1", "1": "bn1"}
    checked = 0
    for key, value in trunk.state_dict().items():
        if not key.startswith("stages."):  # the region head, checked below
            continue
        _, stage, rest = key.split(".", 2)  # "stages.<stage>.<rest>"
        if stage == "stem":
            index, rest = rest.split(".", 1)
            name = f"{stem_names[index]}.{rest}"
        else:
            name = f"{stage}.{rest}"
        assert torch.equal(value, final["model"][name]), name
        checked += 1
    head = trunk.make_box_head().layers[0].state_dict()  # layer4
    for key, value in head.items():
        assert torch.equal(value, final["model"][f"layer4.{key}"])
    assert checked > 50 and head
    fresh = backbones.build_backbone(final["name"], **final["options"])
    assert not torch.equal(fresh.state_dict()["stages.stem.0.weight"], final["model"]["conv1.weight"])


def test_resume_continues_exactly_where_training_stopped(one_epoch, data_root, tmp_path):
    resumed = str(tmp_path / "resumed")
    shutil.copytree(one_epoch, resumed)
    assert train_classifier.main(["--resume", *tool_args(data_root, resumed, 2)]) == 0
    straight = str(tmp_path / "straight")
    assert train_classifier.main(tool_args(data_root, straight, 2)) == 0

    ckpt = load_checkpoint(Checkpointer(resumed).latest())
    assert ckpt["epoch"] == 2
    assert ckpt["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.005)  # 0.05 dropped once
    records = read_metrics(resumed)
    assert [r["epoch"] for r in records if "val_top1_err" in r] == [1, 2]  # one line per epoch
    assert records[-1]["epoch"] == 2 and "val10_top1_err" in records[-1]
    a = torch.load(os.path.join(resumed, "model_final.pth"), weights_only=True)["model"]
    b = torch.load(os.path.join(straight, "model_final.pth"), weights_only=True)["model"]
    for key in b:
        assert torch.equal(a[key], b[key]), key


def test_missing_resume_checkpoint_is_an_error(data_root, tmp_path, capsys):
    out = str(tmp_path / "out")
    missing = str(tmp_path / "nope.pth")
    assert train_classifier.main(["--resume", missing, *tool_args(data_root, out, 1)]) == 2
    assert "nope.pth" in capsys.readouterr().err  # the one error line
    assert train_classifier.main(["--resume", *tool_args(data_root, out, 1)]) == 2  # nothing saved yet
    assert "nothing to resume" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(out, "model_final.pth"))
