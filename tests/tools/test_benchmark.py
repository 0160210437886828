"""tools/benchmark.py: sections replaced in place in the benchmarks document, a real (tiny) section run
through main(), and the proposal cache throughput section."""

import argparse
import json
import os

import pytest
import torch

from rcnn.config import load_config, save_config
from rcnn.config_schema import DetectionConfig
from rcnn.detectors.build import build_detector
from rcnn.tasks.detection import save_detector
from tests.helpers.data_fixtures import CATEGORIES, make_coco


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("benchmark")


def test_update_document_appends_then_replaces_in_place(tool):
    doc = tool.update_document("", "ops", "## Ops\n\nfirst\n")
    assert doc.startswith(tool.TITLE)
    doc = tool.update_document(doc, "detector", "## Detector\n\nd1\n")
    doc = tool.update_document(doc, "ops", "## Ops\n\nsecond\n")
    assert "first" not in doc and "second" in doc and "d1" in doc
    assert doc.index("second") < doc.index("d1")  # replaced where it was, not appended again
    assert doc.count("<!-- benchmark:ops -->") == 1 and doc.count("<!-- /benchmark:ops -->") == 1
    # text outside the markers (an introduction, hand-written notes) is kept
    doc = doc.replace(tool.INTRO, "Hand-written notes.")
    doc = tool.update_document(doc, "detector", "## Detector\n\nd2\n")
    assert "Hand-written notes." in doc and "d2" in doc and "d1" not in doc


def test_device_sections_are_kept_apart(tool, monkeypatch, tmp_path):
    calls = []

    def fake_ops(args):
        calls.append(args.device)
        return f"## Ops {args.device}\n"

    monkeypatch.setitem(tool.RUNNERS, "ops", fake_ops)
    out = tmp_path / "bench.md"
    assert tool.main(["--sections", "ops", "--output", str(out)]) == 0
    text = out.read_text()
    assert "<!-- benchmark:ops -->\n## Ops cpu" in text
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr(tool, "machine_line", lambda device: device)
    assert tool.main(["--sections", "ops", "--device", "cuda", "--output", str(out)]) == 0
    text = out.read_text()
    assert "<!-- benchmark:ops@cuda -->\n## Ops cuda" in text and "## Ops cpu" in text
    assert calls == ["cpu", "cuda"]


def test_cuda_without_cuda_is_an_error(tool, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert tool.main(["--sections", "ops", "--device", "cuda", "--output", str(tmp_path / "b.md")]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "b.md").exists()


def test_ops_section_runs_for_real(tool, monkeypatch, tmp_path):
    from tools.benchmarks import ops

    monkeypatch.setattr(ops, "QUICK_CASES", ops.QUICK_CASES[:2])  # nms and batched_nms: a second or two
    out = tmp_path / "bench.md"
    assert tool.main(["--sections", "ops", "--quick", "--output", str(out)]) == 0
    text = out.read_text()
    assert "## Ops" in text and "| nms |" in text and "| batched_nms |" in text
    assert "identical" in text


def test_proposal_cache_section_measures_every_worker_count(monkeypatch):
    from tools.benchmarks import proposal_cache

    monkeypatch.setattr(proposal_cache, "default_workers", lambda: 2)
    monkeypatch.setitem(proposal_cache.QUICK, "images", 2)
    text = proposal_cache.run_section(quick=True)
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| workers")]
    assert [row.split(" | ")[0] for row in rows] == ["| 1", "| 2"]
    rates = [float(row.split(" | ")[1]) for row in rows]
    assert all(rate > 0 for rate in rates)
    assert rows[0].endswith("| 1.00 |")


def test_onnx_section_runs_for_real(tool, tmp_path):
    out = tmp_path / "onnx.md"
    assert tool.main(["--sections", "onnx", "--quick", "--output", str(out)]) == 0
    text = out.read_text()
    assert "<!-- benchmark:onnx -->" in text and "ONNX Runtime images/s" in text
    row = next(line for line in text.splitlines() if line.startswith("| Faster R-CNN"))
    assert row.rstrip(" |").endswith("yes")  # the same detections from both


def test_main_job_runs_once_per_seed_and_tabulates_each(tool, monkeypatch):
    seen = []

    def fake_run(command, cwd, check):  # writes the summary a quickstart run with that seed would
        seed = int(command[command.index("--seed") + 1])
        out = command[command.index("--output") + 1]
        seen.append(seed)
        os.makedirs(out)
        summary = {
            "seconds": {"data": 30.0 + seed, "classifier": 100.0, "detector": 300.0, "infer": 5.0},
            "classifier": {"val_top1_err": 0.03, "val_top5_err": 0.0, "val_num_images": 540},
            "detector": {"AP": 0.7 + seed / 100, "AP50": 0.94, "AP75": 0.85},
        }
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump(summary, f)

    monkeypatch.setattr(tool.subprocess, "run", fake_run)
    args = argparse.Namespace(device="cpu", quick=False, seeds=[0, 2])
    text = tool.main_job_section(args)
    assert seen == [0, 2]
    assert "| data | 30 | 32 |" in text
    assert "| 0 | 3.00% | - | 0.700 | 0.940 | 0.850 |" in text
    assert "| 2 | 3.00% | - | 0.720 | 0.940 | 0.850 |" in text
    assert "--seeds 0 2" in text


def test_onnx_section_times_trained_runs(tool, tmp_path):
    """--onnx-runs: a run directory as tools/train_detector.py leaves it (config.yaml, model_final.pth of
    a tiny random detector, a few generated val images): one row per run, the same detections. The run is
    C4: its export costs less than half an FPN's, and tests/detectors/test_export_fpn.py exports an FPN."""
    images = [{"id": i, "file_name": f"{i}.png", "height": 64 + 8 * i, "width": 80} for i in range(1, 4)]
    images_dir, ann = make_coco(tmp_path / "data", images=images, annotations=[])
    run = tmp_path / "run"
    run.mkdir()
    cfg = load_config(
        os.path.join(tool.ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml"),
        DetectionConfig,
        [
            "model.backbone.options={width: 8}",
            "test.min_size=64",
            "test.max_size=96",
            f"data.val_images={images_dir}",
            f"data.val_annotations={ann}",
            "solver.device=cpu",
        ],
    )
    save_config(cfg, run / "config.yaml")
    torch.manual_seed(0)
    model = build_detector(cfg.model, len(CATEGORIES))
    metadata = {"class_names": [c["name"] for c in CATEGORIES], "label_to_category": {1: 7, 2: 3, 3: 11}}
    save_detector(str(run / "model_final.pth"), model, metadata)
    out = tmp_path / "onnx.md"
    argv = ["--sections", "onnx", "--onnx-runs", str(run), "--onnx-images", "2", "--reps", "1"]
    assert tool.main([*argv, "--output", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith("| Faster R-CNN")]
    assert len(rows) == 1 and "FPN" not in rows[0] and "(run)" in rows[0]
    assert rows[0].rstrip(" |").endswith("yes")
