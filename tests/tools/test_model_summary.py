"""tools/model_summary.py: the table and totals for a named network, and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers.tools import load_tool

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "model_summary.py"


def test_vgg16_totals(capsys):
    assert load_tool("model_summary").main(["vgg16", "--device", "meta", "--group", "classifier"]) == 0
    out = capsys.readouterr().out
    assert "features.0" in out and "Conv2d" in out and "64x224x224" in out
    assert "138,357,544" in out and "15,470,264,320" in out and "15,237,608" in out
    assert "classifier: 123,642,856 parameters" in out


def test_alexnet_at_227_with_options(capsys):
    tool = load_tool("model_summary")
    assert tool.main(["alexnet", "--input-size", "227", "--device", "meta", "-o", "groups=1"]) == 0
    out = capsys.readouterr().out
    assert "96x55x55" in out and "34,944" in out and "62,378,344" in out  # groups=1: merged halves


def test_errors(capsys):
    tool = load_tool("model_summary")
    assert tool.main(["vgg17"]) == 2
    assert "Did you mean" in capsys.readouterr().err
    assert tool.main(["alexnet", "--input-size", "32", "--device", "meta"]) == 2
    assert "cannot run on a 32x32 input" in capsys.readouterr().err
    assert tool.main(["lenet5", "-o", "activation=sigmoid", "--input-size", "32"]) == 2
    assert "activation" in capsys.readouterr().err
    assert tool.main(["vgg11", "--device", "meta", "--group", "nothing"]) == 2
    assert "no module named 'nothing'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["vgg11", "-o", "no_equals_sign"])


def test_runs_as_a_script_on_a_real_model():
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "lenet5",
            "--input-size",
            "32",
            "--num-classes",
            "10",
            "-o",
            "in_channels=1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "features.c1" in result.stdout and "6x28x28" in result.stdout
    assert "61,706" in result.stdout  # LeNet-5: "60,000 trainable parameters"


def test_detector_config_runs_as_a_script():
    """The whole detector of the main job's config, by part, at its test size (256x256)."""
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--config",
            "configs/faster_rcnn/synthetic_resnet18.yaml",
            "model.num_classes=9",
            "--device",
            "meta",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for part in ("trunk", "rpn", "region_head", "predictor", "total"):
        assert part in out
    assert "image 256x256, 100 RoIs" in out  # test.min_size x test.max_size; post_nms_top_n_test
    assert f"{100 * 128 * (10 + 36):,}" in out  # the predictor: R x 128 x (K+1 + 4K)


def test_detector_errors(capsys):
    tool = load_tool("model_summary")
    config = str(ROOT / "configs" / "faster_rcnn" / "synthetic_resnet18.yaml")
    assert tool.main(["--config", config, "data.train_annotations=missing.json", "--device", "meta"]) == 2
    assert "pass --num-classes" in capsys.readouterr().err
    assert tool.main(["--config", config, "model.nope=1", "--num-classes", "2"]) == 2
    assert "nope" in capsys.readouterr().err
    assert tool.main(["--config", config, "--num-classes", "2", "--input-size", "1", "2", "3"]) == 2
    assert "H W" in capsys.readouterr().err
