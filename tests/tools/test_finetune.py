"""model.weights=DETECTOR.pth: a detector trained on the synthetic set, fine-tuned through
tools/train_detector.py on a 2-class subset with other category ids."""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch
from helpers.tools import load_tool

from rcnn.config import ConfigError, load_config
from rcnn.config_schema import DetectionConfig
from rcnn.data.synthetic import make_detection_dataset
from rcnn.detectors.build import build_detector
from rcnn.engine.logging import read_metrics
from rcnn.tasks.detector_weights import CLASS_LAYERS, load_detector_weights

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")
SIZE = 64


def overrides(train_images: str, train_json: str, val_json: str, out: str, max_iter: int) -> list[str]:
    return [
        f"data.train_images={train_images}",
        f"data.train_annotations={train_json}",
        f"data.val_images={train_images}",
        f"data.val_annotations={val_json}",
        f"data.min_size=[{SIZE}]",
        f"data.max_size={SIZE}",
        "data.num_workers=0",
        f"test.min_size={SIZE}",
        f"test.max_size={SIZE}",
        "model.backbone.options={width: 8}",
        "model.backbone.freeze_at=0",
        "model.rpn.anchor_sizes=[16,32,64]",
        "model.roi_heads.batch_size_per_image=32",
        "solver.device=cpu",
        "solver.amp=false",
        "solver.channels_last=false",
        "solver.ims_per_batch=2",
        "solver.warmup_iters=2",
        "solver.base_lr=0.02",
        "solver.steps=[]",  # a constant lr after warm-up
        f"solver.max_iter={max_iter}",
        "solver.log_period=1",
        f"solver.checkpoint_period={max_iter}",
        f"output.dir={out}",
    ]


def subset(annotations: str, out: str, keep: dict[int, int]) -> str:
    """The images of ``annotations`` holding a category of ``keep`` (old id -> new id), with only those."""
    data = json.load(open(annotations))
    anns = [
        dict(a, category_id=keep[a["category_id"]]) for a in data["annotations"] if a["category_id"] in keep
    ]
    ids = {a["image_id"] for a in anns}
    cats = [dict(c, id=keep[c["id"]]) for c in data["categories"] if c["id"] in keep]
    images = [i for i in data["images"] if i["id"] in ids]
    with open(out, "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    data = make_detection_dataset(
        root / "data", num_train=8, num_val=2, image_size=SIZE, seed=3, min_objects=1, max_objects=2,
        min_scale=0.35, max_scale=0.6, workers=1,
    )  # fmt: skip
    train = load_tool("train_detector")
    source = str(root / "source")
    args = overrides(data["train_images"], data["train_annotations"], data["val_annotations"], source, 4)
    assert train.main(["--config", CONFIG, "--no-progress", *args]) == 0
    counts: dict[int, int] = {}
    for a in json.load(open(data["train_annotations"]))["annotations"]:
        counts[a["category_id"]] = counts.get(a["category_id"], 0) + 1
    common = sorted(counts, key=lambda c: -counts[c])[:2]
    subset_json = subset(data["train_annotations"], str(root / "subset.json"), {common[0]: 41, common[1]: 17})
    tuned = str(root / "tuned")
    weights = os.path.join(source, "model_final.pth")
    args = overrides(data["train_images"], subset_json, subset_json, tuned, 40)
    assert train.main(["--config", CONFIG, "--no-progress", *args, f"model.weights={weights}"]) == 0
    return {"source": source, "tuned": tuned, "weights": weights, "subset": subset_json}


def test_finetuning_learns_the_subset(runs):
    rows = [r for r in read_metrics(runs["tuned"]) if "loss_cls" in r]
    assert rows[0]["iteration"] == 1  # a new run: the iteration starts fresh, not at the source's 4
    total = [sum(r[k] for k in ("loss_rpn_cls", "loss_rpn_box", "loss_cls", "loss_box")) for r in rows]
    assert sum(total[-5:]) / 5 < 0.7 * sum(total[:5]) / 5
    metrics = json.load(open(os.path.join(runs["tuned"], "metrics.json")))
    assert metrics["AP"] > 0
    checkpoint = torch.load(
        os.path.join(runs["tuned"], "model_final.pth"), map_location="cpu", weights_only=False
    )
    names = checkpoint["extra"]["metadata"]["class_names"]
    assert len(names) == 2 and sorted(checkpoint["extra"]["metadata"]["label_to_category"].values()) == [
        17,
        41,
    ]
    log = open(os.path.join(runs["tuned"], "log.txt")).read()
    warning = [line for line in log.splitlines() if "class set differs" in line and str(names) in line]
    assert len(warning) == 1 and all(layer in warning[0] for layer in CLASS_LAYERS)
    assert "checkpoint classes ['circle', 'square'," in warning[0]  # and the new list: both class lists


def test_shared_layers_equal_the_source_at_iteration_0(runs):
    cfg = load_config(os.path.join(runs["tuned"], "config.yaml"), DetectionConfig)
    assert cfg.model.weights == runs["weights"]
    source = torch.load(runs["weights"], map_location="cpu", weights_only=False)["model"]
    torch.manual_seed(0)
    model = build_detector(cfg.model, 2)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    assert load_detector_weights(model, runs["weights"], ["a", "b"]) == list(CLASS_LAYERS)
    state = model.state_dict()
    assert set(state) == set(source)
    for key, value in state.items():
        if key.rpartition(".")[0] in CLASS_LAYERS:
            assert torch.equal(value, fresh[key]) and value.shape != source[key].shape, key
        else:
            assert torch.equal(value, source[key]), key
    assert len([k for k in state if k.startswith("backbone.")]) > 20


def test_same_classes_load_everything(runs, caplog):
    cfg = load_config(os.path.join(runs["source"], "config.yaml"), DetectionConfig)
    names = torch.load(runs["weights"], map_location="cpu", weights_only=False)["extra"]["metadata"][
        "class_names"
    ]
    model = build_detector(cfg.model, len(names))
    with caplog.at_level(logging.WARNING):
        assert load_detector_weights(model, runs["weights"], names) == []
    assert "class set differs" not in caplog.text
    source = torch.load(runs["weights"], map_location="cpu", weights_only=False)["model"]
    assert all(torch.equal(v, source[k]) for k, v in model.state_dict().items())


def test_other_mismatches_are_errors_listing_the_keys(runs, tmp_path):
    cfg = load_config(
        os.path.join(runs["source"], "config.yaml"), DetectionConfig, ["model.backbone.options={width: 16}"]
    )
    with pytest.raises(ConfigError, match=r"mis-shaped .*backbone\.stages\.stem\.0\.weight"):
        load_detector_weights(build_detector(cfg.model, 2), runs["weights"], ["a", "b"])
    with pytest.raises(FileNotFoundError, match="model.weights"):
        load_detector_weights(build_detector(cfg.model, 2), str(tmp_path / "missing.pth"), ["a", "b"])
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="model.weights"):
        load_detector_weights(build_detector(cfg.model, 2), str(bad), ["a", "b"])
