"""Nothing is lost or overwritten silently, and tools/infer.py copes with real inputs: each case runs the
real tool in a subprocess and checks the exit status, the one line that names the file or folder, no
traceback, and that the files present before are byte-identical after."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import cv2
import pytest
from helpers.tools import load_tool

from rcnn.data.synthetic import make_detection_dataset
from rcnn.engine.checkpoint import LAST_CHECKPOINT
from rcnn.tasks.run_dir import OutputDirExistsError, check_output_dir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")
CLS_CONFIG = os.path.join(ROOT, "configs", "classification", "synthetic_resnet18.yaml")


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, os.path.join(ROOT, "tools", f"{name}.py"), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def hashes(folder: str) -> dict[str, str]:
    """sha256 of every file under ``folder``, by relative path."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("warning:")]


def detector_overrides(data: dict[str, str], out: str, max_iter: int) -> list[str]:
    return [
        f"data.train_images={data['train_images']}",
        f"data.train_annotations={data['train_annotations']}",
        f"data.val_images={data['val_images']}",
        f"data.val_annotations={data['val_annotations']}",
        "data.min_size=[64]",
        "data.max_size=64",
        "data.num_workers=0",
        "test.min_size=64",
        "test.max_size=64",
        "model.backbone.options={width: 8}",
        "model.rpn.anchor_sizes=[16,32]",
        "model.roi_heads.batch_size_per_image=16",
        "solver.ims_per_batch=2",
        "solver.warmup_iters=1",
        "solver.base_lr=0.01",
        f"solver.max_iter={max_iter}",
        "solver.steps=[]",
        "solver.log_period=1",
        "solver.checkpoint_period=1",
        f"output.dir={out}",
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("synthetic")
    return make_detection_dataset(
        root, num_train=4, num_val=2, image_size=64, seed=3, max_objects=2, workers=1
    )


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory) -> str:
    """A finished two-iteration Faster R-CNN run (trained once for the module, on --device cpu)."""
    out = str(tmp_path_factory.mktemp("run") / "detector")
    proc = run_tool("train_detector", "--config", CONFIG, "--no-progress", "--device", "cpu",
                    *detector_overrides(data, out, 2))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_training_into_a_previous_run_stops_and_names_the_ways_on(data, trained):
    before = hashes(trained)
    assert {LAST_CHECKPOINT, "metrics.jsonl", "metrics.json", "detections.json", "config.yaml"} <= set(before)
    args = ["--config", CONFIG, "--no-progress", "--device", "cpu", *detector_overrides(data, trained, 3)]
    proc = run_tool("train_detector", *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert trained in line and "--resume" in line and "--overwrite" in line and "output.dir" in line
    assert hashes(trained) == before  # config.yaml, metrics.jsonl, checkpoints: all untouched


def test_resume_appends_to_metrics_jsonl(data, trained, tmp_path):
    out = str(tmp_path / "resumed")
    shutil.copytree(trained, out)
    before = open(os.path.join(out, "metrics.jsonl"), encoding="utf-8").read()
    assert before.strip()
    args = ["--config", CONFIG, "--no-progress", "--device", "cpu", "--resume",
            *detector_overrides(data, out, 3)]  # fmt: skip
    proc = run_tool("train_detector", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = open(os.path.join(out, "metrics.jsonl"), encoding="utf-8").read()
    assert after.startswith(before) and len(after) > len(before)
    steps = [json.loads(line)["iteration"] for line in after.splitlines() if "loss_cls" in line]
    assert steps == [1, 2, 3]


def test_train_classifier_refuses_a_previous_run(tmp_path):
    out = tmp_path / "classifier"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"epoch": 1, "val_top1_err": 0.5}\n')
    (out / "config.yaml").write_text("model:\n  name: resnet18\n")
    before = hashes(str(out))
    proc = run_tool("train_classifier", "--config", CLS_CONFIG, "--no-progress", "--device", "cpu",
                    f"output.dir={out}")  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert str(out) in line and "metrics.jsonl" in line and "--resume" in line and "--overwrite" in line
    assert hashes(str(out)) == before


def test_overwrite_removes_the_old_checkpoint_pointer(tmp_path):
    (tmp_path / LAST_CHECKPOINT).write_text("model_0002.pth\n")
    with pytest.raises(OutputDirExistsError, match="--overwrite"):
        check_output_dir(tmp_path)
    check_output_dir(tmp_path, resume="latest")  # continuing is fine, nothing removed
    assert (tmp_path / LAST_CHECKPOINT).exists()
    check_output_dir(tmp_path, overwrite=True)
    assert not (tmp_path / LAST_CHECKPOINT).exists()
    check_output_dir(tmp_path / "new")  # a new folder: nothing to refuse


def test_evaluate_writes_into_eval_not_over_the_training_outputs(trained):
    before = hashes(trained)
    proc = run_tool("evaluate", "--config", os.path.join(trained, "config.yaml"),
                    "--checkpoint", os.path.join(trained, "model_final.pth"), "--device", "cpu")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = hashes(trained)
    assert {k: v for k, v in after.items() if not k.startswith("eval" + os.sep)} == before
    assert {os.path.join("eval", "metrics.json"), os.path.join("eval", "detections.json")} <= set(after)


@pytest.fixture
def mixed_inputs(data, tmp_path) -> str:
    """A folder with two readable images of one stem (a.png, a.jpg), a corrupt PNG and a text file."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    first = sorted(os.listdir(data["val_images"]))[0]
    image = cv2.imread(os.path.join(data["val_images"], first))
    cv2.imwrite(str(folder / "a.png"), image)
    cv2.imwrite(str(folder / "a.jpg"), image)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (folder / "notes.txt").write_text("not an image\n")
    return str(folder)


def infer_args(trained: str, output: str) -> list[str]:
    return ["--config", os.path.join(trained, "config.yaml"), "--checkpoint",
            os.path.join(trained, "model_final.pth"), "--output", output, "--device", "cpu",
            "--score-threshold", "0.0"]  # fmt: skip


def test_infer_skips_unreadable_inputs_and_keeps_names(trained, mixed_inputs, tmp_path):
    before = hashes(mixed_inputs)
    out = str(tmp_path / "out")
    files = sorted(os.path.join(mixed_inputs, f) for f in os.listdir(mixed_inputs))
    # as a shell passes an unquoted glob: several words after --input, then a config override
    proc = run_tool("infer", *infer_args(trained, out), "--input", *files, "test.max_size=64")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    warnings = warning_lines(proc.stderr)
    assert len(warnings) == 2
    assert any("broken.png" in w for w in warnings) and any("notes.txt" in w for w in warnings)
    assert "2 unreadable" in proc.stderr
    assert sorted(os.listdir(out)) == ["a.jpg", "a.png", "detections.json"]
    results = json.load(open(os.path.join(out, "detections.json")))
    assert {r["file_name"] for r in results} <= {"a.jpg", "a.png"}
    assert hashes(mixed_inputs) == before


def test_infer_exits_2_only_when_nothing_could_be_read(trained, mixed_inputs, tmp_path):
    out = str(tmp_path / "out")
    bad = [os.path.join(mixed_inputs, "broken.png"), os.path.join(mixed_inputs, "notes.txt")]
    proc = run_tool("infer", *infer_args(trained, out), "--input", *bad)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert "none of the 2" in line
    assert not os.path.exists(os.path.join(out, "detections.json"))


def test_infer_config_typo_is_one_error_line(trained, mixed_inputs, tmp_path):
    args = [*infer_args(trained, str(tmp_path / "out")), "--input", mixed_inputs, "test.max_sise=64"]
    proc = run_tool("infer", *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert "max_sise" in line


def test_infer_never_writes_over_an_input(trained, mixed_inputs):
    before = hashes(mixed_inputs)
    proc = run_tool("infer", *infer_args(trained, mixed_inputs), "--input", mixed_inputs)
    assert proc.returncode == 2
    (line,) = error_lines(proc.stderr)
    assert "a.jpg" in line and mixed_inputs in line
    assert hashes(mixed_inputs) == before


def test_infer_split_inputs_and_output_names():
    infer = load_tool("infer")
    specs, overrides = infer.split_inputs(["x/a.png", "b=c.png", "test.min_size=64"], ["y/", "solver.seed=1"])
    assert specs == ["x/a.png", "b=c.png", "y/"] and overrides == ["test.min_size=64", "solver.seed=1"]
    names = infer.output_names(["x/a.png", "x/a.jpg", "y/a.png", "z/A.png", "w/detections.json"])
    assert names == ["a.png", "a.jpg", "a_1.png", "A_2.png", "detections.json.png"]


def test_benchmark_writes_docs_only_when_asked(monkeypatch, tmp_path, capsys):
    tool = load_tool("benchmark")
    monkeypatch.setitem(tool.RUNNERS, "ops", lambda args: "## Ops\n\nmeasured\n")
    docs = os.path.join(ROOT, "docs", "benchmarks.md")
    before = hashes(os.path.dirname(docs))
    assert tool.main(["--sections", "ops"]) == 0
    assert "## Ops" in capsys.readouterr().out
    assert hashes(os.path.dirname(docs)) == before  # stdout only, no file written
    target = tmp_path / "benchmarks.md"
    monkeypatch.setattr(tool, "DOCS", str(target))
    assert tool.main(["--sections", "ops", "--write-docs"]) == 0
    assert "<!-- benchmark:ops -->\n## Ops" in target.read_text()
