"""tools.benchmarks.accuracy: the quick section has both sets and both models with COCO AP values in [0, 1];
the photo sets are deterministic for a seed, with non-contiguous category ids and every box inside its
image; torchvision's model composed around a copy of rcnn's trunk + FPN starts from the same weights and
tiles the same anchors (half a stride apart, as torchvision centres them). No assertion on speed."""

from __future__ import annotations

import json
import os
import tempfile

import pytest
import torch
from helpers.benchmark_tables import table_rows
from torchvision.models.detection.image_list import ImageList

from rcnn.config import ConfigError, load_config
from rcnn.config_schema import DetectionConfig
from rcnn.detectors.build import build_detector
from tools.benchmarks import accuracy
from tools.benchmarks.photo_sets import PHOTO_SETS, write_photo_set
from tools.benchmarks.torchvision_fpn import remaining_differences, torchvision_fpn_faster_rcnn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def text() -> str:
    """The quick section (tiny sets, 20 iterations per model), random initial weights."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(accuracy.WEIGHTS_ENV, raising=False)
        mp.delenv(accuracy.AMP_ENV, raising=False)
        return accuracy.run_section(quick=True)


def test_quick_section_has_both_sets_and_models_with_ap_in_range(text):
    assert text.startswith(accuracy.TITLE + "\n")
    rows = table_rows(text, "| set | model |")
    cells = [dict(zip(accuracy.HEADER, row)) for row in rows]
    for photo_set in PHOTO_SETS:
        models = [c for c in cells if c["set"] == photo_set.title and not c["model"].startswith("**")]
        assert sorted(c["model"] for c in models) == sorted(accuracy.MODELS), photo_set.title
        for c in models:
            for metric in ("AP", "AP50", "AP75"):
                assert 0.0 <= float(c[metric]) <= 1.0, (photo_set.title, c["model"], metric)
            assert float(c["training s"]) > 0 and float(c["total s"]) > 0
        difference = [c for c in cells if c["set"] == photo_set.title and c["model"].startswith("**")]
        assert len(difference) == 1 and difference[0]["AP"].startswith("**")
    data_rows = table_rows(text, "| set | categories")
    assert [row[0] for row in data_rows] == [s.title for s in PHOTO_SETS]
    assert "python tools/benchmark.py --sections accuracy --quick" in text
    assert "both trained in float32" in text
    assert text.count("python tools/train_detector.py --config") == len(PHOTO_SETS)
    assert tempfile.gettempdir() not in text  # the work folder is written as WORK


def _written(photo_set, folder: str, seed: int) -> tuple[dict, dict, dict[str, bytes]]:
    paths = write_photo_set(photo_set, folder, num_train=4, num_val=2, image_size=96, seed=seed)
    splits = {}
    for split in ("train", "val"):
        with open(paths[f"{split}_annotations"], encoding="utf-8") as f:
            splits[split] = json.load(f)
    pngs = {}
    for name in sorted(os.listdir(paths["train_images"])):
        with open(os.path.join(paths["train_images"], name), "rb") as f:
            pngs[name] = f.read()
    return splits["train"], splits["val"], pngs


@pytest.mark.parametrize("photo_set", PHOTO_SETS, ids=lambda s: s.key)
def test_photo_sets_are_deterministic_with_boxes_inside_and_sparse_ids(photo_set, tmp_path):
    train, val, pngs = _written(photo_set, str(tmp_path / "a"), seed=3)
    again = _written(photo_set, str(tmp_path / "b"), seed=3)
    assert (train, val, pngs) == again  # the same JSON and the same image bytes
    assert _written(photo_set, str(tmp_path / "c"), seed=4)[0] != train
    ids = [c["id"] for c in train["categories"]]
    assert ids == [cid for cid, _ in photo_set.categories] and ids != list(range(1, len(ids) + 1))
    for data in (train, val):
        assert len(data["annotations"]) >= len(data["images"])  # objects in every set
        images = {img["id"]: img for img in data["images"]}
        for ann in data["annotations"]:
            img = images[ann["image_id"]]
            x, y, w, h = ann["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0, ann
            assert x + w <= img["width"] and y + h <= img["height"], ann
            assert ann["category_id"] in ids and ann["iscrowd"] == 0


def _quick_model(extra: list[str] = ()) -> torch.nn.Module:
    cfg = load_config(
        os.path.join(ROOT, accuracy.CONFIG), DetectionConfig, [*accuracy.QUICK_OVERRIDES, *extra]
    )
    torch.manual_seed(0)
    return build_detector(cfg.model, 5)


def test_torchvision_model_copies_the_weights_and_tiles_the_same_anchors():
    ours = _quick_model()
    tv = torchvision_fpn_faster_rcnn(ours)
    own = {p.data_ptr() for p in ours.parameters()}
    assert not own & {p.data_ptr() for p in tv.parameters()}  # a copy: nothing shared
    assert (
        sum(p.numel() for p in tv.parameters() if p.requires_grad)
        == sum(p.numel() for p in ours.parameters() if p.requires_grad)
        + 4 * tv.roi_heads.box_predictor.bbox_pred.in_features
        + 4
    )  # + torchvision's background deltas
    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 128, 128, generator=gen) * 255, torch.rand(3, 128, 128, generator=gen) * 255]
    with torch.no_grad():
        batch, sizes = ours.preprocess(images)
        theirs_batch = tv.transform(images)[0]
        assert torch.allclose(theirs_batch.tensors, batch, atol=1e-5)
        features = ours.backbone(batch)
        tv_features = tv.backbone(theirs_batch.tensors)
        assert list(tv_features) == list(features)  # P3-P6, finest first
        for name in features:
            assert torch.allclose(tv_features[name], features[name], atol=1e-5), name
        maps = list(features.values())
        for feature in maps:
            ours_logits, ours_deltas = ours.proposal_generator.head(feature)
            tv_logits, tv_deltas = tv.rpn.head([feature])
            assert torch.allclose(tv_logits[0], ours_logits) and torch.allclose(tv_deltas[0], ours_deltas)
        # the same number of anchors per image, in the same order: ours centred half a stride further
        ours_anchors = ours.proposal_generator.anchor_generator(maps)
        tv_anchors = tv.rpn.anchor_generator(ImageList(batch, sizes), maps)
        assert [len(a) for a in tv_anchors] == [sum(len(level) for level in ours_anchors)] * len(images)
        levels = ours.proposal_generator.anchor_generator.levels
        shift = torch.cat([torch.full((len(a), 1), g.stride / 2) for g, a in zip(levels, ours_anchors)])
        assert (tv_anchors[0] + shift - torch.cat(ours_anchors)).abs().max() <= 0.5 + 1e-4
        pooled = torch.randn(7, maps[0].shape[1], 7, 7, generator=gen)
        scores, deltas = ours.roi_heads.predictor(ours.roi_heads.box_head(pooled))
        tv_scores, tv_deltas = tv.roi_heads.box_predictor(tv.roi_heads.box_head(pooled))
        assert torch.allclose(tv_scores, scores, atol=1e-6)
        assert torch.allclose(tv_deltas[:, 4:], deltas, atol=1e-6) and not tv_deltas[:, :4].any()
    assert tv.roi_heads.box_roi_pool.featmap_names == ours.roi_heads.pooler.in_features
    rpn = ours.proposal_generator
    for tv_top_n, top_n in (
        (tv.rpn._pre_nms_top_n, rpn.pre_nms_top_n),
        (tv.rpn._post_nms_top_n, rpn.post_nms_top_n),
    ):
        assert tv_top_n == {"training": top_n["train"], "testing": top_n["test"]}


def test_remaining_differences_read_the_model_settings():
    default = " ".join(remaining_differences(_quick_model()))
    assert "Anchors" in default and "RoIAlign" in default and "cross the image boundary" not in default
    like_torchvision = _quick_model(
        ["model.rpn.anchor_offset=0", "model.rpn.round_anchors=true", "model.roi_heads.aligned=false"]
    )
    rest = " ".join(remaining_differences(like_torchvision))
    assert "Anchors" not in rest and "RoIAlign" not in rest


def test_loop_seconds_weigh_each_window_by_its_iterations():
    records = [
        {"iteration": 20, "time": 0.5},
        {"iteration": 20, "eval/AP": 0.1},
        {"iteration": 30, "time": 1.0},
    ]
    assert accuracy.loop_seconds(records) == pytest.approx(20 * 0.5 + 10 * 1.0)


def test_full_run_needs_the_classifier_checkpoint(monkeypatch):
    monkeypatch.delenv(accuracy.WEIGHTS_ENV, raising=False)
    with pytest.raises(ConfigError, match=accuracy.WEIGHTS_ENV):
        accuracy.run_section(quick=False)
