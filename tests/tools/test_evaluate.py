"""tools/evaluate.py: --gt/--results mode, run in-process through main()."""

import json

import pytest


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("evaluate")


CATEGORIES = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]
GT_BOXES = {1: [(3, [10, 10, 50, 40]), (7, [100, 80, 60, 90])], 2: [(7, [30, 20, 120, 100])]}


@pytest.fixture
def gt_path(tmp_path):
    images = [{"id": i, "file_name": f"{i}.png", "height": 240, "width": 320} for i in GT_BOXES]
    annotations = [
        {"id": n, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
        for n, (i, c, b) in enumerate(((i, c, b) for i, objs in GT_BOXES.items() for c, b in objs), 1)
    ]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": CATEGORIES}))
    return path


def write_results(path, shift=0.0):
    results = [
        {"image_id": i, "category_id": c, "bbox": [b[0] + shift * b[2], b[1], b[2], b[3]], "score": 0.8}
        for i, objs in GT_BOXES.items()
        for c, b in objs
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))
    return path


def test_main_writes_metrics_into_eval_beside_results(tool, gt_path, tmp_path, capsys):
    results = write_results(tmp_path / "run" / "dets.json")
    assert tool.main(["--gt", str(gt_path), "--results", str(results)]) == 0
    assert not (tmp_path / "run" / "metrics.json").exists()  # a training run's metrics.json stays
    metrics = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["per_category"] == pytest.approx({"cat": 1.0, "dog": 1.0})
    out = capsys.readouterr().out
    assert "| AP |" in out and "cat" in out and "1.0000" in out


def test_main_output_folder_and_lower_ap(tool, gt_path, tmp_path):
    results = write_results(tmp_path / "dets.json", shift=0.2)
    assert (
        tool.main(["--gt", str(gt_path), "--results", str(results), "--output", str(tmp_path / "eval")]) == 0
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["AP50"] == pytest.approx(1.0) and metrics["AP"] < 1.0
    assert not (tmp_path / "metrics.json").exists()
    assert tool.evaluate_files(gt_path, results, tmp_path / "again") == metrics


def test_main_reports_bad_files(tool, gt_path, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4]}]))
    assert tool.main(["--gt", str(gt_path), "--results", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "entry 0" in err and "'score'" in err
    assert not (tmp_path / "metrics.json").exists()
    assert tool.main(["--gt", str(tmp_path / "nothing.json"), "--results", str(bad)]) == 2
    assert "nothing.json" in capsys.readouterr().err


def test_main_needs_gt_and_results(tool, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        tool.main(["--results", str(tmp_path / "dets.json")])
    assert info.value.code == 2
    assert "--gt" in capsys.readouterr().err
