"""Running a tool as a user does (a subprocess) and checking that a mistake ends in one error line."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DETECTOR_CONFIG = str(ROOT / "configs" / "faster_rcnn" / "synthetic_resnet18.yaml")
CLASSIFIER_CONFIG = str(ROOT / "configs" / "classification" / "synthetic_resnet18.yaml")


@dataclass
class ToolRun:
    returncode: int
    stdout: str
    stderr: str


def run_tool(name: str, *args: str, timeout: float = 300) -> ToolRun:
    """``python tools/<name>.py ARGS`` from the repository root, without the debug switch."""
    env = {k: v for k, v in os.environ.items() if k != "RCNN_DEBUG"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONWARNINGS"] = "ignore"  # a library's warning is not the error line under test
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / f"{name}.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return ToolRun(result.returncode, result.stdout, result.stderr)


def error_lines(run: ToolRun) -> list[str]:
    """The lines of stderr that are not log records or library warnings (what the user is told)."""
    lines = []
    for line in run.stderr.splitlines():
        if not line.strip() or line.startswith("[") or "WARN" in line[:12]:
            continue  # "[time] rcnn.x INFO: ..." log records, OpenCV's "[ WARN:0@...]"
        lines.append(line)
    return lines


def assert_one_error_line(run: ToolRun, *names: str, code: int = 2) -> str:
    """Exit ``code``, no traceback anywhere, and exactly one ``error: ...`` line naming every one of
    ``names``; returns that line."""
    output = run.stdout + run.stderr
    assert run.returncode == code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "killed by signal" not in output, output[-3000:]
    lines = error_lines(run)
    assert len(lines) == 1, lines
    (line,) = lines
    assert line.startswith("error: "), line
    for name in names:
        assert name in line, (name, line)
    return line
