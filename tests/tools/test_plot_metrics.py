"""tools/plot_metrics.py in a subprocess on two generated runs, and the smoothing it uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from rcnn.visualization.curves import loss_keys, smooth

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def write_run(folder, scale: float) -> None:
    folder.mkdir(parents=True)
    lines = []
    for it in range(20, 220, 20):
        lines.append({"iteration": it, "lr": 0.01 * min(1, it / 100), "loss_cls": scale / it, "loss_box": 0.5,
                      "total_loss": scale / it + 0.5, "time": 0.1})  # fmt: skip
        if it % 100 == 0:
            lines.append(
                {"iteration": it, "eval/AP": it / 400, "eval/AP50": it / 300, "eval/per_category/a": 0.1}
            )
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_smooth_and_loss_keys():
    assert smooth([1.0, 1.0, 1.0], 0.6).tolist() == pytest.approx([1.0, 1.0, 1.0])  # debiased
    assert smooth([0.0, 10.0], 0.5).tolist() == pytest.approx([0.0, 5.0 / 0.75])
    assert np.array_equal(smooth([3.0, 1.0], 0.0), [3.0, 1.0])
    assert loss_keys([{"iteration": 1, "loss_cls": 1.0, "lr": 0.1, "total_loss": 2.0}]) == [
        "loss_cls",
        "total_loss",
    ]


def test_two_runs_overlaid_in_one_png(tmp_path):
    write_run(tmp_path / "run_a", 1.0)
    write_run(tmp_path / "run_b", 2.0)
    out = tmp_path / "curves.png"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "plot_metrics.py"), str(tmp_path / "run_a"),
           str(tmp_path / "run_b"), "--output", str(out)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    picture = cv2.imread(str(out))
    # loss_cls, loss_box, total_loss, lr, eval: 5 panels in 2 rows of 3 (5 x 4 inches each, 100 dpi)
    assert picture.shape == (800, 1500, 3) and picture.std() > 0
    bad = subprocess.run([*cmd[:2], str(tmp_path / "missing"), "--output", str(out)],
                         capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")
