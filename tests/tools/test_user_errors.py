"""A user's mistakes end in one line ``error: ...`` naming the key, file or id, with exit status 2 and no
traceback, and the user's dataset files are byte-identical afterwards. Each case runs the real tool in a
subprocess, as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers.data_fixtures import snapshot
from helpers.user_errors import CLASSIFIER_CONFIG, DETECTOR_CONFIG, assert_one_error_line, run_tool

import backbones
from rcnn.data.synthetic import make_classification_dataset, make_detection_dataset


def detector_args(data: dict[str, str], out: Path, *extra: str) -> list[str]:
    return [
        "--config", DETECTOR_CONFIG, "--no-progress",
        f"data.train_images={data['train_images']}", f"data.train_annotations={data['train_annotations']}",
        f"data.val_images={data['val_images']}", f"data.val_annotations={data['val_annotations']}",
        "data.min_size=[64]", "data.max_size=64", "data.num_workers=0", "test.min_size=64",
        "test.max_size=64", "model.backbone.options={width: 8}", "model.rpn.anchor_sizes=[16,32]",
        "solver.device=cpu", "solver.ims_per_batch=2", "solver.max_iter=2", "solver.steps=[]",
        "solver.warmup_iters=1",
        f"output.dir={out}", *extra,
    ]  # fmt: skip


@pytest.fixture
def det_data(tmp_path: Path) -> dict[str, str]:
    return make_detection_dataset(
        tmp_path / "data", num_train=4, num_val=2, image_size=64, seed=0, max_objects=2, workers=1
    )


def train_image(data: dict[str, str], image_id: int) -> tuple[Path, int]:
    """The file of training image ``image_id`` (and its id)."""
    images = json.loads(Path(data["train_annotations"]).read_text())["images"]
    record = next(r for r in images if r["id"] == image_id)
    return Path(data["train_images"]) / record["file_name"], record["id"]


def first_train_image(data: dict[str, str]) -> tuple[Path, int]:
    images = json.loads(Path(data["train_annotations"]).read_text())["images"]
    return train_image(data, images[1]["id"])


# ------------------------------------------------------------------------------ bad data (train_detector)
def test_missing_training_image_is_reported_before_training(det_data, tmp_path):
    path, image_id = first_train_image(det_data)
    path.unlink()
    before = snapshot(Path(det_data["train_images"]).parent)
    line = assert_one_error_line(
        run_tool("train_detector", *detector_args(det_data, tmp_path / "out")),
        str(path), f"image id={image_id}", "not found", "data.skip_invalid=true",
    )  # fmt: skip
    assert "cannot" not in line
    assert snapshot(Path(det_data["train_images"]).parent) == before
    assert not (tmp_path / "out" / "last_checkpoint").exists()  # stopped before training


def test_image_that_is_not_an_image_is_reported_before_training(det_data, tmp_path):
    path, image_id = first_train_image(det_data)
    path.write_text("not a picture")
    before = snapshot(Path(det_data["train_images"]).parent)
    assert_one_error_line(
        run_tool("train_detector", *detector_args(det_data, tmp_path / "out")),
        str(path), f"image id={image_id}", "image header",
    )  # fmt: skip
    assert snapshot(Path(det_data["train_images"]).parent) == before


def test_every_bad_image_is_listed_at_once_and_skip_invalid_trains_on_the_rest(det_data, tmp_path):
    images = json.loads(Path(det_data["train_annotations"]).read_text())["images"]
    paths = [Path(det_data["train_images"]) / r["file_name"] for r in images[:2]]
    for p in paths:
        p.unlink()
    run = run_tool("train_detector", *detector_args(det_data, tmp_path / "out"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "2 unusable image files; set data.skip_invalid=true" in run.stderr
    assert all(str(p) in run.stderr for p in paths)
    ok = run_tool(
        "train_detector",
        *detector_args(det_data, tmp_path / "skip", "data.skip_invalid=true", "data.filter_empty=true"),
    )
    assert ok.returncode == 0, ok.stderr[-3000:]


def test_image_that_fails_to_decode_in_a_worker_gives_the_original_message(det_data, tmp_path):
    """The header reads (the data check passes) but the pixels do not: the error is raised in a DataLoader
    worker and reaches the user as the dataset's own message, the workers shut down cleanly."""
    path, image_id = first_train_image(det_data)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a truncated PNG
    before = snapshot(Path(det_data["train_images"]).parent)
    line = assert_one_error_line(
        run_tool("train_detector", *detector_args(det_data, tmp_path / "out", "data.num_workers=2")),
        str(path), f"image id={image_id}", "cannot decode image",
    )  # fmt: skip
    assert "DataLoader worker" not in line and "Caught" not in line
    assert snapshot(Path(det_data["train_images"]).parent) == before


def test_box_outside_the_image_names_the_annotation_and_the_skip_hint(det_data, tmp_path):
    ann_file = Path(det_data["train_annotations"])
    content = json.loads(ann_file.read_text())
    ann = content["annotations"][0]
    ann["bbox"] = [10, 10, 500, 20]
    ann_file.write_text(json.dumps(content))
    before = snapshot(ann_file.parent)
    assert_one_error_line(
        run_tool("train_detector", *detector_args(det_data, tmp_path / "out")),
        str(ann_file), f"annotation id={ann['id']}", "outside", "data.skip_invalid=true",
    )  # fmt: skip
    assert snapshot(ann_file.parent) == before


# ---------------------------------------------------------------------- bad config values (train_detector)
BAD_VALUES = [
    ("model.backbone.name=resnet19", "model.backbone.name"),
    ("solver.max_iter=0", "solver.max_iter"),
    ("model.roi_heads.pooler=roi_pooll", "model.roi_heads.pooler"),
    ("solver.device=gpu", "solver.device"),
    ("data.min_size=[]", "data.min_size"),
    ("solver.ims_per_batch=0", "solver.ims_per_batch"),
    ("solver.steps=[3500,2850]", "solver.steps"),
    ("solver.base_lr=-1", "solver.base_lr"),
    ("model.type=faster-rcnn", "model.type"),
    ("model.backbone.options={width:8}", "model.backbone.options"),
    ("solver.base_lrr=0.1", "solver.base_lr"),
]


@pytest.mark.parametrize(("override", "key"), BAD_VALUES, ids=[o for o, _ in BAD_VALUES])
def test_bad_config_value_names_the_key(det_data, tmp_path, override, key):
    before = snapshot(Path(det_data["train_images"]).parent)
    assert_one_error_line(
        run_tool("train_detector", *detector_args(det_data, tmp_path / "out", override)), key
    )
    assert snapshot(Path(det_data["train_images"]).parent) == before


# ------------------------------------------------------------------------------------------- checkpoints
@pytest.fixture
def classifier_file(tmp_path: Path) -> Path:
    """A classifier's weights (ResNet-18, base width 8, 9 classes), as an ImageNet file would be."""
    path = tmp_path / "resnet18_w8.pth"
    torch.save(backbones.build_classifier("resnet18", num_classes=9, width=8).state_dict(), path)
    return path


def test_classifier_checkpoint_given_as_detector_checkpoint(det_data, tmp_path, classifier_file):
    for tool, extra in (
        ("evaluate", []),
        ("infer", ["--input", det_data["val_images"], "--output", str(tmp_path / "i")]),
    ):
        run = run_tool(
            tool, "--config", DETECTOR_CONFIG, "--checkpoint", str(classifier_file), *extra,
            "model.backbone.options={width: 8}", "solver.device=cpu",
            f"data.val_images={det_data['val_images']}",
            f"data.val_annotations={det_data['val_annotations']}",
        )  # fmt: skip
        line = assert_one_error_line(
            run, str(classifier_file), "classifier checkpoint", "model.backbone.weights"
        )
        assert "num_classes" not in line, tool


def test_missing_backbone_weights_file_names_the_key(det_data, tmp_path):
    missing = tmp_path / "nowhere" / "model_final.pth"
    args = detector_args(det_data, tmp_path / "out", f"model.backbone.weights={missing}")
    assert_one_error_line(run_tool("train_detector", *args), "model.backbone.weights", str(missing))


def test_backbone_weights_of_another_width_are_summarised_in_five_lines(det_data, tmp_path, classifier_file):
    run = run_tool(
        "train_detector",
        *detector_args(det_data, tmp_path / "out", f"model.backbone.weights={classifier_file}",
                       "model.backbone.options={width: 16}"),
    )  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-3000:]
    lines = [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("[")]
    assert lines[0].startswith("error: model.backbone.weights") and str(classifier_file) in lines[0]
    assert 2 <= len(lines) <= 5, lines
    assert any("mis-shaped" in line and "more" in line for line in lines), lines


# ----------------------------------------------------------------------------- bad data (train_classifier)
def test_classifier_image_that_is_not_an_image_is_reported_before_training(tmp_path):
    root = tmp_path / "cls"
    make_classification_dataset(root, 2, 1, image_size=32, seed=0, workers=1)
    bad = sorted((root / "train").rglob("*.png"))[0]
    bad.write_text("not a picture")
    before = snapshot(root)
    assert_one_error_line(
        run_tool(
            "train_classifier", "--config", CLASSIFIER_CONFIG, "--no-progress", f"data.root={root}",
            "data.resize=32", "data.crop=32", "solver.device=cpu", "solver.epochs=1",
            f"output.dir={tmp_path / 'out'}",
        ),
        str(bad), "image header",
    )  # fmt: skip
    assert snapshot(root) == before
