"""tools/compute_proposals.py on a tiny generated COCO set: every image cached, summary against recall.py,
resume computing only the missing images, refused parameter changes, bad images, --evaluate."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from helpers.tools import load_tool

from rcnn.proposals import compute
from rcnn.proposals.recall import mabo, proposal_recall

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "fast_rcnn", "synthetic_resnet18.yaml")


tool = load_tool("compute_proposals")

# (height, width, [((x1, y1, x2, y2), category id), ...]); the last image has no annotations
IMAGES = [
    (64, 80, [((8, 10, 40, 44), 1), ((50, 20, 74, 50), 2)]),
    (72, 64, [((12, 16, 52, 40), 2)]),
    (96, 72, [((4, 30, 30, 90), 1), ((36, 6, 66, 40), 1)]),
    (64, 96, [((40, 12, 90, 56), 2)]),
    (80, 80, []),
]
COLOURS = {1: (230, 50, 40), 2: (40, 70, 220)}


def make_coco(root) -> tuple[str, str]:
    """Noisy grey images with flat coloured rectangles, and their COCO json."""
    rng = np.random.default_rng(0)
    images_dir = os.path.join(root, "images")
    os.makedirs(images_dir)
    images, anns = [], []
    for image_id, (h, w, objects) in enumerate(IMAGES, start=1):
        image = rng.normal(110, 12, (h, w, 3)).clip(0, 255).astype(np.uint8)
        for (x1, y1, x2, y2), cat in objects:
            image[y1:y2, x1:x2] = COLOURS[cat]
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "iscrowd": 0,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)})  # fmt: skip
        name = f"{image_id:03d}.png"
        cv2.imwrite(os.path.join(images_dir, name), image[:, :, ::-1])
        images.append({"id": image_id, "file_name": name, "height": h, "width": w})
    ann_file = os.path.join(root, "ann.json")
    cats = [{"id": 1, "name": "red"}, {"id": 2, "name": "blue"}]
    with open(ann_file, "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    return images_dir, ann_file


@pytest.fixture
def coco(tmp_path) -> dict[str, str]:
    images_dir, ann_file = make_coco(tmp_path / "data")
    return {"images": images_dir, "ann": ann_file, "out": str(tmp_path / "out")}


def args(coco: dict[str, str], *extra: str, split: str = "val", workers: int = 1) -> list[str]:
    return [
        "--config", CONFIG, "--split", split, "--workers", str(workers), "--no-progress",
        f"data.val_images={coco['images']}", f"data.val_annotations={coco['ann']}",
        f"data.train_images={coco['images']}", f"data.train_annotations={coco['ann']}",
        f"data.val_proposals={coco['out']}/val", f"data.train_proposals={coco['out']}/train",
        "proposals.mode=single", "proposals.max_boxes=60", *extra,
    ]  # fmt: skip


def npy_files(folder: str) -> list[str]:
    return sorted(n for n in os.listdir(folder) if n.endswith(".npy"))


def test_all_images_cached_with_summary(coco, capsys):
    assert tool.main(args(coco, workers=2)) == 0  # the process pool
    folder = os.path.join(coco["out"], "val")  # the config's data.val_proposals
    assert npy_files(folder) == ["1.npy", "2.npy", "3.npy", "4.npy", "5.npy"]  # the empty image too
    params = json.load(open(os.path.join(folder, "params.json")))
    assert params["mode"] == "single" and params["max_boxes"] == 60 and "code_version" in params
    props = [np.load(os.path.join(folder, f"{i}.npy")) for i in range(1, 6)]
    for array, (h, w, _) in zip(props, IMAGES):
        assert array.dtype == np.float32 and array.ndim == 2 and array.shape[1] == 4
        assert 0 < len(array) <= 60
        assert (array[:, 2] > array[:, 0]).all() and (array[:, 2] <= w).all() and (array[:, 3] <= h).all()

    summary = json.load(open(os.path.join(folder, "summary.json")))
    gts = [np.array([b for b, _ in objs], np.float32).reshape(-1, 4) for _, _, objs in IMAGES]
    labels = [np.array([c for _, c in objs]) for _, _, objs in IMAGES]
    assert summary["num_images"] == 5 and summary["num_gt_boxes"] == 6
    assert summary["recall@0.5"] == pytest.approx(proposal_recall(props, gts, 0.5))
    assert summary["recall@0.7"] == pytest.approx(proposal_recall(props, gts, 0.7))
    assert summary["mabo"] == pytest.approx(mabo(props, gts, labels))
    assert summary["recall@0.5"] >= 5 / 6  # flat rectangles on noise: selective search finds them
    assert summary["boxes_per_image_mean"] == pytest.approx(np.mean([len(p) for p in props]))
    assert summary["images_computed_this_run"] == 5 and summary["params"] == params
    err = capsys.readouterr().err
    assert f"data.val_proposals={folder}" in err


def test_resume_computes_only_the_missing_images(coco, monkeypatch):
    assert tool.main(args(coco)) == 0
    folder = os.path.join(coco["out"], "val")
    before = {n: np.load(os.path.join(folder, n)) for n in npy_files(folder)}
    mtimes = {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in before}
    os.remove(os.path.join(folder, "2.npy"))
    os.remove(os.path.join(folder, "5.npy"))

    calls: list[tuple[int, int]] = []
    real = compute.selective_search

    def counting(image, *a, **k):
        calls.append(image.shape[:2])
        return real(image, *a, **k)

    monkeypatch.setattr(compute, "selective_search", counting)
    assert tool.main(args(coco)) == 0
    assert sorted(calls) == sorted([(72, 64), (80, 80)])  # images 2 and 5 only
    for name, array in before.items():  # same boxes as the first run: the search is deterministic
        np.testing.assert_array_equal(np.load(os.path.join(folder, name)), array)
        if name not in ("2.npy", "5.npy"):
            assert os.stat(os.path.join(folder, name)).st_mtime_ns == mtimes[name]
    assert json.load(open(os.path.join(folder, "summary.json")))["images_computed_this_run"] == 2
    calls.clear()
    assert tool.main(args(coco)) == 0 and calls == []  # complete: nothing to do


def test_other_parameters_are_refused(coco, capsys):
    assert tool.main(args(coco)) == 0
    assert tool.main(args(coco, "proposals.seed=3")) == 2
    assert "differing keys: seed" in capsys.readouterr().err
    assert tool.main(args(coco, "proposals.mode=slow")) == 2  # not a preset
    assert "proposals.mode='slow'" in capsys.readouterr().err


def test_output_flag_and_default_folder(coco, capsys):
    out = os.path.join(coco["out"], "elsewhere")
    assert tool.main(args(coco, split="train") + ["--output", out]) == 0
    assert len(npy_files(os.path.join(out, "train"))) == 5
    # no data.train_proposals: <output.dir>/proposals/<split>
    argv = args(coco, split="train", workers=1) + ["data.train_proposals=", f"output.dir={coco['out']}/run"]
    assert tool.main(argv) == 0
    assert len(npy_files(os.path.join(coco["out"], "run", "proposals", "train"))) == 5
    assert f"data.train_proposals={coco['out']}/run/proposals/train" in capsys.readouterr().err


def test_unreadable_image_names_the_file(coco, capsys):
    with open(os.path.join(coco["images"], "003.png"), "wb") as f:
        f.write(b"not a png")
    assert tool.main(args(coco)) == 2
    err = capsys.readouterr().err
    assert "003.png" in err and "image id=3" in err
    assert npy_files(os.path.join(coco["out"], "val")) == ["1.npy", "2.npy"]  # done before image 3: kept


def test_evaluate_an_npz(coco, tmp_path, capsys):
    gts = {str(i): np.array([b for b, _ in objs], np.float32).reshape(-1, 4) for i, (_, _, objs) in
           enumerate(IMAGES, start=1)}  # fmt: skip
    gts["1"] = gts["1"][:1] + 1.0  # one of the two boxes, shifted by a pixel
    np.savez(tmp_path / "gt_as_proposals.npz", **gts)
    assert tool.main(args(coco) + ["--evaluate", str(tmp_path / "gt_as_proposals.npz")]) == 0
    out = capsys.readouterr().out
    assert "5 images, 6 ground-truth boxes" in out
    assert "83.3%" in out  # 5 of 6 boxes found at IoU 0.5 and 0.7
