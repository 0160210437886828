"""Config values are checked when the config loads: one-line ConfigErrors naming the full key and a fix."""

from __future__ import annotations

import glob
import os

import pytest

from rcnn.config import ConfigError, load_config, save_config
from rcnn.config_schema import ClassificationConfig, DetectionConfig

DETECTION = "configs/faster_rcnn/synthetic_resnet18.yaml"
CLASSIFICATION = "configs/classification/synthetic_resnet18.yaml"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def error(overrides: list[str], path: str = DETECTION, schema: type = DetectionConfig) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(os.path.join(ROOT, path), schema, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "path", sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True))
)
def test_every_config_file_loads_and_round_trips(path, tmp_path):
    schema = ClassificationConfig if os.sep + "classification" + os.sep in path else DetectionConfig
    cfg = load_config(path, schema)
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml", schema) == cfg


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.backbone.name=resnet19",
         "model.backbone.name='resnet19': unknown network; did you mean 'resnet18'?"),
        ("solver.max_iter=0", "solver.max_iter=0: must be > 0"),
        ("model.roi_heads.pooler=roi_pooll",
         "model.roi_heads.pooler='roi_pooll': expected one of 'roi_pool', 'roi_align'. "
         "Did you mean 'roi_pool'?"),
        ("solver.device=gpu", "solver.device='gpu': expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ("data.min_size=[]", "data.min_size=[]: must not be empty"),
        ("data.min_size=[600,0]", "data.min_size=[600, 0]: must be > 0"),
        ("solver.ims_per_batch=0", "solver.ims_per_batch=0: must be > 0"),
        ("solver.steps=[3500,2850]", "solver.steps=[3500, 2850]: must be strictly increasing"),
        ("solver.base_lr=-1", "solver.base_lr=-1.0: must be > 0"),
        ("model.type=faster-rcnn",
         "model.type='faster-rcnn': expected one of 'faster_rcnn', 'fast_rcnn', 'rcnn'. "
         "Did you mean 'faster_rcnn'?"),
        ("model.roi_heads.soft_nms=gauss", "Did you mean 'gaussian'?"),
        ("model.rcnn.cache_dtype=half",
         "model.rcnn.cache_dtype='half': expected one of 'float16', 'float32'."),
        ("proposals.mode=slow", "proposals.mode='slow': expected one of 'single', 'fast', 'quality'."),
        ("data.hflip_prob=1.5", "data.hflip_prob=1.5: must be between 0 and 1"),
        ("data.min_size=600", "data.min_size=600: expected a list, got int; did you mean [600]?"),
        ("solver.base_rl=0.1", "unknown config key 'solver.base_rl'. Did you mean 'solver.base_lr'?"),
        ("model.roi_heads.polar=roi_align", "Did you mean 'model.roi_heads.pooler'?"),
        ("model.backbone.options={width:8}",
         "model.backbone.options={'width:8': null}: YAML read 'width:8' as an option name without a value; "
         "write a space after the colon: {width: 8}"),
        ("model.backbone.options={widht: 8}",
         "model.backbone.options={widht: 8}: resnet18 has no option 'widht'; "
         "its options: attention, replace_stride_with_dilation, stride_in_1x1, width, zero_init_residual"),
    ],
)  # fmt: skip
def test_bad_detection_value_names_the_key_and_the_fix(override, expected):
    message = error([override])
    assert expected in message, message


def test_steps_are_checked_against_max_iter_after_the_overrides():
    message = error(["solver.max_iter=100"])  # the file's steps are [2850, 3450]
    assert message.startswith("solver.steps=[2850, 3450]: every step must be below solver.max_iter=100")
    cfg = load_config(
        os.path.join(ROOT, DETECTION), DetectionConfig, ["solver.max_iter=100", "solver.steps=[80]"]
    )
    assert cfg.solver.steps == [80] and cfg.solver.max_iter == 100
    assert load_config(os.path.join(ROOT, DETECTION), DetectionConfig, ["solver.steps=[]"]).solver.steps == []


def test_valid_devices_load():
    for device in ("auto", "cpu", "cuda", "cuda:1"):
        cfg = load_config(os.path.join(ROOT, DETECTION), DetectionConfig, [f"solver.device={device}"])
        assert cfg.solver.device == device


def test_backbone_options_of_another_network_are_accepted():
    overrides = ["model.backbone.name=alexnet", "model.backbone.options={lrn: false, groups: 1}"]
    cfg = load_config(os.path.join(ROOT, DETECTION), DetectionConfig, overrides)
    assert cfg.model.backbone.options == {"lrn": False, "groups": 1}
    message = error(["model.backbone.name=alexnet", "model.backbone.options={width: 8}"])
    assert "alexnet has no option 'width'; its options: dropout, groups, lrn" in message
    overrides = ["model.backbone.name=se_resnet18", "model.backbone.options={width: 8, se_reduction: 4}"]
    se = load_config(os.path.join(ROOT, DETECTION), DetectionConfig, overrides)
    assert se.model.backbone.options == {"width": 8, "se_reduction": 4}  # SEResNet forwards width to ResNet


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.name=resnet19", "model.name='resnet19': unknown network; did you mean 'resnet18'?"),
        ("model.options={width:8}", "write a space after the colon: {width: 8}"),
        (
            "solver.lr_schedule=cosin",
            "solver.lr_schedule='cosin': expected one of 'step', 'plateau', 'cosine'.",
        ),
        ("solver.batch_size=0", "solver.batch_size=0: must be > 0"),
        ("solver.epochs=0", "solver.epochs=0: must be > 0"),
        ("solver.device=gpu", "solver.device='gpu': expected 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ("solver.steps=[60,30]", "solver.steps=[60, 30]: must be strictly increasing"),
        ("solver.bsae_lr=0.1", "Did you mean 'solver.base_lr'?"),
    ],
)
def test_bad_classification_value_names_the_key_and_the_fix(override, expected):
    message = error([override], CLASSIFICATION, ClassificationConfig)
    assert expected in message, message


def test_a_bad_value_in_the_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("solver:\n  base_lr: 0\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: solver\.base_lr=0\.0: must be > 0"):
        load_config(path, DetectionConfig)


@pytest.mark.parametrize(
    "wrong, closest",
    [
        ("configs/faster_rcnn/resnet18_synthetic.yaml", "configs/faster_rcnn/synthetic_resnet18.yaml"),
        ("configs/faster_rcnn/synthetic_resnet81.yaml", "configs/faster_rcnn/synthetic_resnet18.yaml"),
        ("configs/fast_rcnn/vgg_16.yaml", "configs/fast_rcnn/vgg16.yaml"),
    ],
)
def test_a_missing_config_file_suggests_the_closest_one(wrong, closest):
    with pytest.raises(ConfigError) as info:
        load_config(wrong, DetectionConfig)
    assert str(info.value) == f"config file not found: {wrong}. Did you mean '{closest}'?"
