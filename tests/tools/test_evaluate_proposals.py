"""tools/evaluate.py --proposals: the quality of a proposals folder or .npz against a COCO file, the JSON
and the picture written, and the errors."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from rcnn.proposals.quality import proposal_quality


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("evaluate")


CATEGORIES = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]
# image id -> [(category, xywh)]; image 3 holds only a crowd box, which is not counted
GT = {1: [(3, [10, 10, 40, 30]), (7, [100, 80, 60, 90])], 2: [(7, [30, 20, 120, 100])], 3: []}


@pytest.fixture
def gt_path(tmp_path):
    images = [{"id": i, "file_name": f"{i}.png", "height": 240, "width": 320} for i in GT]
    anns = [
        {"id": n, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
        for n, (i, c, b) in enumerate(((i, c, b) for i, objs in GT.items() for c, b in objs), 1)
    ]
    anns.append(
        {"id": 99, "image_id": 3, "category_id": 3, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 1}
    )
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES}))
    return path


def xyxy(b):
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


def proposals_of(image_id: int, n: int = 400) -> np.ndarray:
    """Random boxes, with each object's box shifted by 4 px inserted at rank 150."""
    rng = np.random.default_rng(image_id)
    xy = rng.uniform(0, 200, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 100, (n, 2))], axis=1)
    for k, (_, b) in enumerate(GT[image_id]):
        boxes[150 + k] = np.add(xyxy(b), [4, 0, 4, 0])
    return boxes.astype(np.float32)


def test_a_cache_folder_is_scored_into_eval_beside_it(tool, gt_path, tmp_path, capsys):
    folder = tmp_path / "proposals" / "val"
    folder.mkdir(parents=True)
    for i in GT:
        np.save(folder / f"{i}.npy", proposals_of(i))
    before = sorted(p.name for p in folder.iterdir())
    assert tool.main(["--gt", str(gt_path), "--proposals", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "AR" in out and "MABO" in out and "1000" not in out.split("\n")[0]
    assert sorted(p.name for p in folder.iterdir()) == before  # the proposals are not touched
    report = json.loads((tmp_path / "proposals" / "eval" / "proposals_val.json").read_text())
    assert report["num_images"] == 3 and report["num_gt_boxes"] == 3  # the crowd box left out
    # the same numbers as the library on the same boxes
    gts = [np.asarray([xyxy(b) for _, b in GT[i]], np.float64).reshape(-1, 4) for i in GT]
    labels = [np.asarray([c for c, _ in GT[i]]) for i in GT]
    expected = proposal_quality([proposals_of(i) for i in GT], gts, labels)
    assert report["all"] == pytest.approx(expected["all"])
    assert report["top_n"]["100"] == pytest.approx(expected["top_n"]["100"])
    # the shifted boxes sit at ranks 151-152: every object recalled at 0.7 within 300
    assert report["top_n"]["300"]["recall@0.7"] == 1.0
    picture = cv2.imread(str(tmp_path / "proposals" / "eval" / "proposals_val.png"))
    assert picture is not None and picture.shape[:2] == (450, 1100)


def test_an_npz_and_an_output_folder(tool, gt_path, tmp_path):
    npz = tmp_path / "rpn.npz"
    np.savez(npz, **{str(i): proposals_of(i)[:50] for i in GT})
    assert tool.main(["--gt", str(gt_path), "--proposals", str(npz), "--output", str(tmp_path / "q")]) == 0
    report = json.loads((tmp_path / "q" / "proposals_rpn.json").read_text())
    assert report["boxes_per_image_max"] == 50
    assert report["all"]["recall@0.5"] < 1.0  # the well-placed boxes were cut off


def test_a_missing_image_or_file_is_one_error_line(tool, gt_path, tmp_path, capsys):
    folder = tmp_path / "partial"
    folder.mkdir()
    np.save(folder / "1.npy", proposals_of(1))
    assert tool.main(["--gt", str(gt_path), "--proposals", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "image 2" in err[-1]
    assert tool.main(["--gt", str(gt_path), "--proposals", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["--proposals", str(folder)])  # no ground truth
