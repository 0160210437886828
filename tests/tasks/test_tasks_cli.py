"""rcnn.tasks.cli: one mapping of exceptions to exit codes for every tool, and the session prologue."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from rcnn.config import ConfigError
from rcnn.config_schema import DetectionConfig
from rcnn.data.errors import DatasetError
from rcnn.engine.trainer import TrainingInterrupted
from rcnn.tasks import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")


def raising(exc: BaseException):
    def fn():
        raise exc

    return fn


def test_exit_codes(capsys):
    assert cli.run_tool(lambda: None) == 0
    assert cli.run_tool(lambda: 3) == 3
    assert cli.run_tool(raising(ConfigError("unknown key 'solver.base_lrr'"))) == 2
    assert capsys.readouterr().err == "error: unknown key 'solver.base_lrr'\n"
    assert cli.run_tool(raising(DatasetError("cannot decode image", file="a.png", image_id=2))) == 2
    assert cli.run_tool(raising(FileNotFoundError("checkpoint not found: x.pth"))) == 2
    assert cli.run_tool(raising(FloatingPointError("loss is nan at iteration 3"))) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "error: loss is nan at iteration 3"
    assert cli.run_tool(raising(TrainingInterrupted(15, 3, "model_0000003.pth"))) == 143
    assert cli.run_tool(raising(KeyboardInterrupt())) == 130
    assert cli.run_tool(raising(ValueError("bad results file")), user_errors=(ValueError,)) == 2
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        cli.run_tool(raising(ZeroDivisionError("1 / 0")))


def test_session_saves_the_config_and_seeds(tmp_path):
    import random

    cfg = DetectionConfig()
    cfg.output.dir = str(tmp_path / "run")
    cfg.solver.seed, cfg.solver.device = 5, "cpu"
    with cli.session(cfg) as run:
        first = random.random()
        assert run.rank == 0 and run.world_size == 1 and run.device.type == "cpu"
    with cli.session(cfg):
        assert random.random() == first
    saved = yaml.safe_load(open(os.path.join(cfg.output.dir, "config.yaml")))
    assert saved["solver"]["seed"] == 5
    assert os.path.isfile(os.path.join(cfg.output.dir, "log.txt"))


@pytest.mark.parametrize("tool", ["train_detector", "evaluate", "infer", "compute_proposals"])
def test_a_tool_with_a_bad_config_key_exits_2_with_one_error_line(tmp_path, tool):
    args = {
        "train_detector": [],
        "evaluate": ["--checkpoint", str(tmp_path / "m.pth")],
        "infer": [
            "--checkpoint",
            str(tmp_path / "m.pth"),
            "--input",
            str(tmp_path),
            "--output",
            str(tmp_path),
        ],
        "compute_proposals": [],
    }[tool]
    env = {**os.environ, "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", f"{tool}.py"), "--config", CONFIG, *args,
         "solver.base_lrr=1"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "base_lr" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
