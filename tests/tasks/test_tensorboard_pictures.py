"""solver.vis_period: a tiny Faster R-CNN run logs the ground-truth-and-proposals picture every period and
the PR curves after the evaluation to TensorBoard; off by default; validated like the other keys."""

from __future__ import annotations

import os

import pytest
from helpers.tools import load_tool
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

from rcnn.config import ConfigError, load_config
from rcnn.config_schema import DetectionConfig
from rcnn.data.synthetic import make_detection_dataset
from rcnn.tasks.tensorboard_pictures import PR_CURVES_TAG, PROPOSALS_TAG

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")

train_detector = load_tool("train_detector")


def images_in(run_dir: str) -> dict[str, list]:
    """Image summaries of every event file of ``run_dir``: tag -> events (step, width, height)."""
    out: dict[str, list] = {}
    for name in sorted(os.listdir(run_dir)):
        if not name.startswith("events.out.tfevents"):
            continue
        acc = EventAccumulator(os.path.join(run_dir, name), size_guidance={IMAGES: 0})
        acc.Reload()
        for tag in acc.Tags()[IMAGES]:
            out.setdefault(tag, []).extend(acc.Images(tag))
    return out


def argv(data: dict[str, str], out: str, *extra: str) -> list[str]:
    return [
        "--config", CONFIG, "--no-progress",
        f"data.train_images={data['train_images']}", f"data.train_annotations={data['train_annotations']}",
        f"data.val_images={data['val_images']}", f"data.val_annotations={data['val_annotations']}",
        "data.min_size=[96]", "data.max_size=96", "data.num_workers=0", "test.min_size=96",
        "test.max_size=96", "model.backbone.options={width: 8}", "model.rpn.anchor_sizes=[16,32,64]",
        "solver.device=cpu", "solver.ims_per_batch=2", "solver.warmup_iters=1", "solver.max_iter=2",
        "solver.steps=[]", "solver.amp=false", "solver.channels_last=false", f"output.dir={out}", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("synthetic")
    return make_detection_dataset(
        root, num_train=4, num_val=2, image_size=96, seed=3, max_objects=3, workers=1
    )


def test_vis_period_logs_proposal_pictures_and_pr_curves(data, tmp_path):
    out = str(tmp_path / "run")
    assert train_detector.main(argv(data, out, "solver.vis_period=1")) == 0
    images = images_in(out)
    assert sorted(e.step for e in images[PROPOSALS_TAG]) == [1, 2]  # every iteration
    first = images[PROPOSALS_TAG][0]
    assert (first.width, first.height) == (96, 96)  # the val image as the model sees it
    assert first.encoded_image_string[:4] == b"\x89PNG"
    assert [e.step for e in images[PR_CURVES_TAG]] == [2]  # after the final evaluation
    assert images[PR_CURVES_TAG][0].width == 1200


def test_off_by_default(data, tmp_path):
    out = str(tmp_path / "run")
    assert train_detector.main(argv(data, out)) == 0
    assert images_in(out) == {}
    assert not [n for n in os.listdir(out) if n.endswith(".pictures")]


def test_vis_period_is_validated():
    with pytest.raises(ConfigError, match="solver.vis_period"):
        load_config(CONFIG, DetectionConfig, ["solver.vis_period=-1"])
