"""tools/compute_proposals.py --method rpn on a tiny synthetic set: the RPN's proposals in the cache format,
a resumed run, a refused other checkpoint; then evaluate.py --proposals scores them and Fast R-CNN trains
and tests on them (step 2 of the alternating training)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from helpers.tools import load_tool
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

from rcnn.config import load_config
from rcnn.config_schema import DetectionConfig
from rcnn.data.synthetic import make_detection_dataset
from rcnn.detectors.build import build_detector
from rcnn.tasks.detection import save_detector
from rcnn.tasks.tensorboard_pictures import PROPOSALS_TAG

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FASTER = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")
FAST = os.path.join(ROOT, "configs", "fast_rcnn", "synthetic_resnet18.yaml")

compute_proposals = load_tool("compute_proposals")
evaluate = load_tool("evaluate")
train_detector = load_tool("train_detector")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("synthetic")
    return make_detection_dataset(
        root, num_train=4, num_val=2, image_size=96, seed=2, max_objects=3, workers=1
    )


def common(data: dict[str, str]) -> list[str]:
    return [
        f"data.train_images={data['train_images']}", f"data.train_annotations={data['train_annotations']}",
        f"data.val_images={data['val_images']}", f"data.val_annotations={data['val_annotations']}",
        "data.min_size=[96]", "data.max_size=96", "data.num_workers=0", "test.min_size=96",
        "test.max_size=96", "test.ims_per_batch=2", "model.backbone.options={width: 8}", "solver.device=cpu",
    ]  # fmt: skip


def write_checkpoint(data: dict[str, str], path: str, seed: int) -> str:
    cfg = load_config(FASTER, DetectionConfig, [*common(data), "model.rpn.anchor_sizes=[16,32,64]"])
    torch.manual_seed(seed)
    model = build_detector(cfg.model, 9)
    names = [f"c{k}" for k in range(9)]
    return save_detector(
        path, model, {"class_names": names, "label_to_category": {k: k for k in range(1, 10)}}
    )


@pytest.fixture(scope="module")
def rpn_dump(data, tmp_path_factory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("rpn")
    checkpoint = write_checkpoint(data, str(work / "faster.pth"), seed=0)
    argv = [
        "--method", "rpn", "--config", FASTER, "--checkpoint", checkpoint,
        "--output", str(work / "proposals"), "--no-progress", *common(data),
        "model.rpn.anchor_sizes=[16,32,64]", "proposals.max_boxes=50",
    ]  # fmt: skip
    assert compute_proposals.main(argv) == 0
    return {"work": str(work), "checkpoint": checkpoint, "argv": argv, "dir": str(work / "proposals")}


def test_the_rpn_fills_a_cache_of_every_image_in_file_pixels(data, rpn_dump):
    for split, n in (("train", 4), ("val", 2)):
        folder = os.path.join(rpn_dump["dir"], split)
        names = sorted(f for f in os.listdir(folder) if f.endswith(".npy"))
        assert len(names) == n
        params = json.load(open(os.path.join(folder, "params.json")))
        assert (
            params["method"] == "rpn" and params["max_boxes"] == 50 and len(params["checkpoint_sha256"]) == 64
        )
        summary = json.load(open(os.path.join(folder, "summary.json")))
        assert summary["images_computed_this_run"] == n
        images = {im["id"]: im for im in json.load(open(data[f"{split}_annotations"]))["images"]}
        for name in names:
            boxes = np.load(os.path.join(folder, name))
            im = images[int(name[:-4])]
            assert boxes.shape[1] == 4 and 0 < len(boxes) <= 50
            assert (boxes[:, 2] <= im["width"]).all() and (boxes[:, 3] <= im["height"]).all()
            assert (boxes[:, 2:] >= boxes[:, :2]).all() and (boxes >= 0).all()


def test_a_second_run_computes_nothing_and_another_checkpoint_is_refused(data, rpn_dump, capsys):
    assert compute_proposals.main(rpn_dump["argv"]) == 0
    summary = json.load(open(os.path.join(rpn_dump["dir"], "val", "summary.json")))
    assert summary["images_computed_this_run"] == 0
    other = write_checkpoint(data, os.path.join(rpn_dump["work"], "other.pth"), seed=1)
    argv = list(rpn_dump["argv"])
    argv[argv.index("--checkpoint") + 1] = other
    capsys.readouterr()
    assert compute_proposals.main(argv) == 2
    assert "checkpoint" in capsys.readouterr().err.splitlines()[-1]


def test_a_fast_rcnn_config_is_no_rpn(data, rpn_dump, capsys):
    argv = ["--method", "rpn", "--config", FAST, "--checkpoint", rpn_dump["checkpoint"], *common(data)]
    assert compute_proposals.main(argv) == 2
    assert "faster" in capsys.readouterr().err.lower()


def test_evaluate_scores_and_fast_rcnn_trains_on_rpn_proposals(data, rpn_dump, tmp_path):
    val = os.path.join(rpn_dump["dir"], "val")
    assert (
        evaluate.main(["--gt", data["val_annotations"], "--proposals", val, "--output", str(tmp_path)]) == 0
    )
    report = json.load(open(tmp_path / "proposals_val.json"))
    assert report["boxes_per_image_max"] <= 50 and report["num_images"] == 2
    out = str(tmp_path / "fast")
    argv = [
        "--config", FAST, "--no-progress", *common(data), f"data.train_proposals={rpn_dump['dir']}/train",
        f"data.val_proposals={val}", "solver.max_iter=2", "solver.steps=[]", "solver.warmup_iters=1",
        "solver.ims_per_batch=2", "solver.amp=false", "solver.channels_last=false",
        "solver.vis_period=2", f"output.dir={out}",
    ]  # fmt: skip
    assert train_detector.main(argv) == 0
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert "AP" in metrics
    # the TensorBoard picture draws the given (RPN) proposals of the val image
    pictures = [n for n in os.listdir(out) if n.endswith(".pictures")]
    acc = EventAccumulator(os.path.join(out, pictures[0]), size_guidance={IMAGES: 0})
    acc.Reload()
    assert [e.step for e in acc.Images(PROPOSALS_TAG)] == [2]
