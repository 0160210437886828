"""The detector checkpoint format of rcnn.tasks.detection: save_detector writes the weights and the
metadata once, load_detector gives both back; the Trainer's extra_state form of the metadata is the same."""

from __future__ import annotations

import pytest
import torch

from rcnn.config_schema import DetectionConfig
from rcnn.detectors.build import build_detector
from rcnn.tasks.detection import MetadataState, load_detector, save_detector
from rcnn.utils.io import CheckpointError, load_checkpoint

METADATA = {"class_names": ["circle", "square", "triangle"], "label_to_category": {1: 7, 2: 3, 3: 11}}


def lenet_config(kind: str = "fast_rcnn") -> DetectionConfig:
    cfg = DetectionConfig()
    cfg.model.type = kind
    cfg.model.backbone.name = "lenet5"
    cfg.model.rcnn.input_size, cfg.model.rcnn.context_padding = 32, 2
    return cfg


@pytest.mark.parametrize("kind", ["fast_rcnn", "rcnn"])
def test_save_and_load_round_trip_the_weights_and_the_metadata(tmp_path, kind):
    cfg = lenet_config(kind)
    torch.manual_seed(0)
    model = build_detector(cfg.model, 3)
    path = save_detector(str(tmp_path / "model_final.pth"), model, METADATA, svm_log=[{"round": 0}])
    raw = load_checkpoint(path)  # only plain values: loads with weights_only=True
    assert raw["extra"]["metadata"] == METADATA and raw["extra"]["svm_log"] == [{"round": 0}]

    cfg.model.num_classes = 0  # K comes from the metadata
    loaded, meta = load_detector(cfg, path, torch.device("cpu"))
    assert meta == METADATA
    assert all(isinstance(k, int) and isinstance(v, int) for k, v in meta["label_to_category"].items())
    assert not loaded.training
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*"))  # atomic: nothing left over


def test_trainer_extra_state_is_the_same_metadata():
    state = MetadataState(METADATA)
    again = MetadataState({"class_names": [], "label_to_category": {}})
    again.load_state_dict({**state.state_dict(), "label_to_category": {"1": 7, "2": 3, "3": 11}})
    assert again.state_dict() == METADATA  # keys back to ints, as after a JSON round trip


def test_weights_that_do_not_fit_are_a_checkpoint_error(tmp_path):
    cfg = lenet_config()
    path = save_detector(str(tmp_path / "m.pth"), build_detector(cfg.model, 2), METADATA)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_detector(cfg, path, torch.device("cpu"))  # the metadata says 3 classes, the weights 2
