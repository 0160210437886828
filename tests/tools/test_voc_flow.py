"""Every analysis tool on a COCO set converted from a generated Pascal VOC folder, called through its
``main(argv)`` with the arguments a user types: voc_to_coco (train and val), browse_dataset (raw and
``--after-transforms``), a tiny train_detector run whose metrics.jsonl feeds plot_metrics, evaluate
(``--metric voc07 | voc | coco``, PR curves, confusion matrix, worst images, ``--show-dir``),
compute_proposals (selective search, and ``--method rpn`` from the trained checkpoint) and evaluate
``--proposals`` on both. Every picture is checked for its promised pixel size and for content, the JSON
files for the VOC class names, and the VOC and COCO metrics for ignoring ``difficult`` objects."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers.tools import load_tool
from helpers.voc_fixtures import VOCScenes, make_voc_scenes

from rcnn.data.voc import VOC_CLASSES, voc_to_coco
from rcnn.evaluation.coco import coco_metrics, load_coco, run_cocoeval
from rcnn.evaluation.voc import evaluate_voc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FASTER = os.path.join(ROOT, "configs", "faster_rcnn", "synthetic_resnet18.yaml")
FAST = os.path.join(ROOT, "configs", "fast_rcnn", "synthetic_resnet18.yaml")

voc_to_coco_tool = load_tool("voc_to_coco")
browse_dataset = load_tool("browse_dataset")
train_detector = load_tool("train_detector")
plot_metrics = load_tool("plot_metrics")
evaluate = load_tool("evaluate")
compute_proposals = load_tool("compute_proposals")

# matplotlib's confusion matrix: 0.6 inch per class (the 20 VOC ones and background) + 2, at 100 dpi
MATRIX_SIDE = round(100 * (0.6 * (len(VOC_CLASSES) + 1) + 2.0))


def assert_png(path: str | os.PathLike, height: int, width: int) -> None:
    """A non-empty PNG of ``height x width`` pixels that is not one flat colour."""
    assert os.path.isfile(path) and os.path.getsize(path) > 0, path
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", path
    picture = cv2.imread(str(path))
    assert picture is not None and picture.shape == (height, width, 3), (path, picture.shape)
    assert picture.std() > 0, path


def read_json(path: str | os.PathLike):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def voc(tmp_path_factory) -> dict:
    """The VOC folder (6 train, 4 val images, the last without objects) converted to train.json / val.json."""
    work = tmp_path_factory.mktemp("voc")
    scenes = make_voc_scenes(work / "VOC2007", num_train=6, num_val=4)
    files = {}
    for split in ("train", "val"):
        files[split] = str(work / f"{split}.json")
        assert voc_to_coco_tool.main([str(scenes.root), "--split", split, "--output", files[split]]) == 0
    return {"scenes": scenes, "images": str(scenes.root / "JPEGImages"), **files, "work": work}


def data_overrides(voc: dict) -> list[str]:
    return [
        f"data.train_images={voc['images']}", f"data.train_annotations={voc['train']}",
        f"data.val_images={voc['images']}", f"data.val_annotations={voc['val']}",
    ]  # fmt: skip


def non_difficult(scenes: VOCScenes, split: str) -> int:
    return sum(not d for name in scenes.splits[split] for _, d, _ in scenes.objects[name])


def file_size(scenes: VOCScenes, file_name: str) -> tuple[int, int]:
    return scenes.sizes[os.path.splitext(file_name)[0]]


@pytest.fixture(scope="module")
def trained(voc) -> str:
    """A Faster R-CNN (ResNet-18 of width 8) trained for 4 iterations on the converted train split."""
    out = str(voc["work"] / "faster_rcnn")
    argv = [
        "--config", FASTER, "--no-progress", *data_overrides(voc),
        "data.min_size=[96]", "data.max_size=128", "data.num_workers=0", "test.min_size=96",
        "test.max_size=128", "model.backbone.options={width: 8}", "model.rpn.anchor_sizes=[16,32,64]",
        "solver.device=cpu", "solver.amp=false", "solver.ims_per_batch=2", "solver.warmup_iters=2",
        "solver.base_lr=0.01", "solver.max_iter=4", "solver.steps=[]", "solver.log_period=1",
        "solver.checkpoint_period=100", f"output.dir={out}",
    ]  # fmt: skip
    assert train_detector.main(argv) == 0
    return out


def test_the_converted_set_keeps_names_difficult_flags_and_the_empty_image(voc):
    scenes = voc["scenes"]
    for split in ("train", "val"):
        data = read_json(voc[split])
        assert [c["name"] for c in data["categories"]] == list(VOC_CLASSES)
        assert [i["voc_id"] for i in data["images"]] == scenes.splits[split]
        expected = [
            (VOC_CLASSES.index(n) + 1, d, [b[0] - 1, b[1] - 1, b[2] - b[0] + 1, b[3] - b[1] + 1])
            for name in scenes.splits[split]
            for n, d, b in scenes.objects[name]
        ]
        got = [(a["category_id"], a["difficult"], a["bbox"]) for a in data["annotations"]]
        assert got == expected
        assert all(a["iscrowd"] == a["difficult"] for a in data["annotations"])
    val = read_json(voc["val"])
    assert any(a["difficult"] for a in val["annotations"])
    assert {i["id"] for i in val["images"]} - {a["image_id"] for a in val["annotations"]} == {4}


def test_browse_dataset_raw_and_after_the_transforms(voc):
    scenes = voc["scenes"]
    out = voc["work"] / "browse"
    argv = ["--config", FASTER, *data_overrides(voc), "data.min_size=[144]", "data.max_size=192"]
    assert browse_dataset.main([*argv, "--output", str(out / "train"), "--after-transforms"]) == 0
    assert browse_dataset.main([*argv, "--output", str(out / "val"), "--split", "val"]) == 0
    for split, scale in (("train", 1.5), ("val", 1.0)):  # train resized from 96 to 144 (shorter side)
        drawn = sorted(os.listdir(out / split / "images"))
        assert drawn == [f"{name}.png" for name in scenes.splits[split]]
        for name in drawn:
            h, w = file_size(scenes, name)
            assert_png(out / split / "images" / name, round(h * scale), round(w * scale))
        stats = read_json(out / split / "stats.json")
        assert list(stats["classes"]) == list(VOC_CLASSES)
        assert stats["images"] == len(scenes.splits[split])
        assert stats["boxes"] == non_difficult(scenes, split)  # difficult objects are not trained on
        assert stats["anchor_fit"]["all"]["boxes"] == stats["boxes"]
        assert_png(out / split / "stats.png", 720, 1500)


def test_the_trained_run_and_its_curves(voc, trained):
    checkpoint = torch.load(os.path.join(trained, "model_final.pth"), map_location="cpu", weights_only=False)
    assert checkpoint["extra"]["metadata"]["class_names"] == list(VOC_CLASSES)
    out = voc["work"] / "curves.png"
    assert plot_metrics.main([trained, "--output", str(out)]) == 0
    # loss_box, loss_cls, loss_rpn_box, loss_rpn_cls, total_loss, lr and eval: 3 rows of 3 panels (5 x 4 in)
    assert_png(out, 1200, 1500)


def check_report(out: Path, scenes: VOCScenes, metric: str, show_dir: Path | None) -> dict:
    """The files evaluate writes beside metrics.json; returns the metrics."""
    metrics = read_json(out / "metrics.json")
    assert metrics["metric"] == metric and list(metrics["per_category"]) == list(VOC_CLASSES)
    assert_png(out / "pr_curves.png", 500, 1200)
    assert_png(out / "confusion_matrix.png", MATRIX_SIDE, MATRIX_SIDE + 100)
    assert read_json(out / "confusion_matrix.json")["classes"] == [*VOC_CLASSES, "background"]
    worst = read_json(out / "worst.json")
    val_files = {f"{name}.jpg" for name in scenes.splits["val"]}
    assert {row["file_name"] for row in worst} <= val_files
    drawn = sorted(os.listdir(out / "worst")) if worst else []
    assert drawn == sorted(row["file_name"].replace(".jpg", ".png") for row in worst)
    for name in drawn:
        assert_png(out / "worst" / name, *file_size(scenes, name))
    if show_dir is not None:
        assert sorted(os.listdir(show_dir)) == sorted(f.replace(".jpg", ".png") for f in val_files)
        for name in os.listdir(show_dir):
            assert_png(show_dir / name, *file_size(scenes, name))
    return metrics


def test_evaluate_the_checkpoint_with_the_voc07_metric(voc, trained):
    scenes = voc["scenes"]
    out, show = voc["work"] / "eval_voc07", voc["work"] / "show_voc07"
    argv = [
        "--config", os.path.join(trained, "config.yaml"),
        "--checkpoint", os.path.join(trained, "model_final.pth"),
        "--metric", "voc07", "--output", str(out), "--show-dir", str(show), "--score-threshold", "0.05",
    ]  # fmt: skip
    assert evaluate.main(argv) == 0
    metrics = check_report(out, scenes, "voc07", show)
    with_gt = {n for name in scenes.splits["val"] for n, d, _ in scenes.objects[name] if not d}
    for name, ap in metrics["per_category"].items():
        assert (0.0 <= ap <= 1.0) if name in with_gt else ap == -1.0, name
    assert read_json(out / "worst.json")  # 4 iterations of training: errors to show


def perfect_results(val: dict) -> list[dict]:
    """A detection on every non-difficult object (score 0.9) and one more, the best scored, exactly on a
    difficult object of a class whose ordinary objects are all in other images; the other difficult objects
    are missed."""
    ordinary = [a for a in val["annotations"] if not a["difficult"]]
    images_of = {c["id"]: set() for c in val["categories"]}  # category -> images of its ordinary objects
    for o in ordinary:
        images_of[o["category_id"]].add(o["image_id"])
    hard = next(
        a
        for a in val["annotations"]
        if a["difficult"] and images_of[a["category_id"]] and a["image_id"] not in images_of[a["category_id"]]
    )
    keys = ("image_id", "category_id", "bbox")
    return [
        *({**{k: a[k] for k in keys}, "score": 0.9} for a in ordinary),
        {**{k: hard[k] for k in keys}, "score": 0.95},
    ]


@pytest.mark.parametrize("metric", ["voc", "coco"])
def test_difficult_objects_are_neither_found_nor_missed(voc, metric):
    """A detection on a difficult object is neither a true nor a false positive and a missed difficult
    object is no miss: all-perfect scores. The same detections against the set converted with the difficult
    objects dropped score lower (the extra detection is a false positive there)."""
    scenes = voc["scenes"]
    val = read_json(voc["val"])
    results_file = voc["work"] / f"results_{metric}.json"
    results = perfect_results(val)
    results_file.write_text(json.dumps(results))
    out = voc["work"] / f"eval_{metric}"
    argv = ["--gt", voc["val"], "--results", str(results_file), "--metric", metric, "--output", str(out),
            "--images", voc["images"]]  # fmt: skip
    assert evaluate.main(argv) == 0
    metrics = check_report(out, scenes, metric, None)
    with_gt = {VOC_CLASSES[a["category_id"] - 1] for a in val["annotations"] if not a["difficult"]}
    assert {n for n, ap in metrics["per_category"].items() if ap >= 0} == with_gt
    assert all(metrics["per_category"][n] == pytest.approx(1.0) for n in with_gt)
    assert read_json(out / "worst.json") == []  # no false positive, no miss
    counts = np.asarray(read_json(out / "confusion_matrix.json")["counts"])
    assert counts[-1].sum() == 0 and counts[:, -1].sum() == 0 and np.trace(counts) == len(results) - 1

    dropped = voc_to_coco(scenes.root, "val", difficult="drop")
    hard_class = VOC_CLASSES[results[-1]["category_id"] - 1]
    if metric == "coco":
        drop_file = voc["work"] / "val_dropped.json"
        drop_file.write_text(json.dumps(dropped))
        lower = coco_metrics(run_cocoeval(load_coco(drop_file), results))["per_category"][hard_class]
    else:
        lower = evaluate_voc(dropped, results, "voc")["per_category"][hard_class]
    assert 0.0 < lower < 1.0


def test_selective_search_and_rpn_proposals_and_their_quality(voc, trained):
    scenes = voc["scenes"]
    out = voc["work"] / "proposals"
    common = ["--no-progress", "proposals.max_boxes=200"]
    ss = ["--config", FAST, "--workers", "1", "--output", str(out / "ss"), *common, *data_overrides(voc),
          "proposals.mode=single"]  # fmt: skip
    assert compute_proposals.main(ss) == 0
    rpn = ["--method", "rpn", "--config", os.path.join(trained, "config.yaml"), "--checkpoint",
           os.path.join(trained, "model_final.pth"), "--output", str(out / "rpn"), *common]  # fmt: skip
    assert compute_proposals.main(rpn) == 0
    for method in ("ss", "rpn"):
        for split in ("train", "val"):
            folder = out / method / split
            ids = range(1, len(scenes.splits[split]) + 1)  # the empty image too
            assert sorted(p.name for p in folder.glob("*.npy")) == sorted(f"{i}.npy" for i in ids)
            summary = read_json(folder / "summary.json")
            assert summary["num_images"] == len(ids)
            assert summary["num_gt_boxes"] == non_difficult(scenes, split)
        report_dir = out / f"quality_{method}"
        argv = ["--gt", voc["val"], "--proposals", str(out / method / "val"), "--output", str(report_dir)]
        assert evaluate.main(argv) == 0
        quality = read_json(report_dir / "proposals_val.json")
        assert quality["num_images"] == 4 and quality["num_gt_boxes"] == non_difficult(scenes, "val")
        assert 0.0 <= quality["all"]["AR"] <= quality["all"]["recall@0.5"] <= 1.0
        assert_png(report_dir / "proposals_val.png", 450, 1100)
