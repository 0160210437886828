"""The on-disk feature cache: chunks of whole images, atomic index, resumption after an interruption (lost
buffer, deleted or truncated chunk, a crash mid-extraction), parameter mismatch."""

from __future__ import annotations

import json
import os

import pytest
import torch

from rcnn.config_schema import ModelConfig
from rcnn.detectors.build import build_detector
from rcnn.detectors.rcnn2014.feature_cache import FeatureCache
from rcnn.detectors.rcnn2014.train import extract_features

PARAMS = {"backbone": "toy", "input_size": 32}


def rows(image_id: int, n: int = 4) -> dict[str, torch.Tensor]:
    return {
        "features": torch.full((n, 3), float(image_id), dtype=torch.float16),
        "image_ids": torch.full((n,), image_id, dtype=torch.int64),
    }


def read_all(cache: FeatureCache) -> dict[str, torch.Tensor]:
    chunks = list(cache.iter_chunks())
    return {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}


def test_chunks_hold_whole_images_and_the_index_lists_them(tmp_path):
    cache = FeatureCache(tmp_path, PARAMS, chunk_size=10)
    for image_id in range(7):
        cache.add(image_id, rows(image_id))
    assert [c["rows"] for c in cache.chunks] == [12, 12]  # flushed at >= 10 rows: 3 images each
    assert cache.done_images == set(range(6))  # image 6 is still buffered
    cache.finish()
    assert cache.complete and [c["rows"] for c in cache.chunks] == [12, 12, 4]
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["complete"] and index["params"] == PARAMS
    assert [c["image_ids"] for c in index["chunks"]] == [[0, 1, 2], [3, 4, 5], [6]]
    data = read_all(cache)
    assert data["features"].dtype == torch.float16 and data["features"].shape == (28, 3)
    assert torch.equal(data["image_ids"], torch.arange(7).repeat_interleave(4))
    assert set(cache.read_chunk(1, ["image_ids"])) == {"image_ids"}
    with pytest.raises(RuntimeError, match="complete"):
        cache.add(7, rows(7))
    assert sorted(os.listdir(tmp_path)) == [
        "chunk_000000.pt",
        "chunk_000001.pt",
        "chunk_000002.pt",
        "index.json",
    ]


def test_resume_after_losing_the_buffer_and_the_last_chunk(tmp_path):
    cache = FeatureCache(tmp_path, PARAMS, chunk_size=8)
    for image_id in range(5):
        cache.add(image_id, rows(image_id))
    del cache  # "killed": image 4 was only buffered
    cache = FeatureCache(tmp_path, PARAMS, chunk_size=8)
    assert cache.done_images == {0, 1, 2, 3} and not cache.complete
    os.remove(tmp_path / "chunk_000001.pt")  # the last chunk is lost too
    cache = FeatureCache(tmp_path, PARAMS, chunk_size=8)
    assert cache.done_images == {0, 1} and cache.num_rows == 8
    for image_id in range(6):
        if image_id not in cache.done_images:
            cache.add(image_id, rows(image_id))
    cache.finish()
    reopened = FeatureCache(tmp_path, PARAMS, chunk_size=8)
    assert reopened.complete and reopened.done_images == set(range(6))
    assert torch.equal(read_all(reopened)["image_ids"], torch.arange(6).repeat_interleave(4))


def test_truncated_chunk_is_redone_and_other_params_are_refused(tmp_path):
    cache = FeatureCache(tmp_path, PARAMS, chunk_size=4)
    for image_id in range(3):
        cache.add(image_id, rows(image_id))
    path = tmp_path / "chunk_000002.pt"
    path.write_bytes(path.read_bytes()[:20])  # a partial file (e.g. copied back incompletely)
    assert FeatureCache(tmp_path, PARAMS, chunk_size=4).done_images == {0, 1}
    with pytest.raises(ValueError, match="input_size: cached 32, now 64"):
        FeatureCache(tmp_path, {**PARAMS, "input_size": 64})
    with pytest.raises(ValueError, match="different numbers of rows"):
        cache.add(9, {"features": torch.zeros(2, 3), "image_ids": torch.zeros(3)})


class ToyDataset(torch.utils.data.Dataset):
    """Images with one or two boxes and jittered + random proposals; fails at ``fail_at`` (a crash)."""

    def __init__(self, num_images: int = 6, fail_at: int | None = None):
        self.ids = [100 + i for i in range(num_images)]
        self.fail_at = fail_at

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int):
        if index == self.fail_at:
            raise RuntimeError("simulated crash")
        g = torch.Generator().manual_seed(index)
        image = torch.rand(3, 48, 48, generator=g) * 255
        boxes = torch.tensor([[4.0, 6.0, 24.0, 30.0], [26.0, 20.0, 46.0, 44.0]])[: 1 + index % 2]
        jitter = boxes.repeat(3, 1) + torch.randn(3 * len(boxes), 4, generator=g)
        xy = torch.rand(5, 2, generator=g) * 30
        proposals = torch.cat([jitter, torch.cat([xy, xy + 8 + torch.rand(5, 2, generator=g) * 10], 1)])
        target = {"boxes": boxes, "labels": torch.tensor([1, 2])[: len(boxes)], "image_id": self.ids[index],
                  "proposals": proposals}  # fmt: skip
        return image, target


def test_interrupted_extraction_continues_from_the_last_complete_chunk(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(type="rcnn")
    cfg.backbone.name = "lenet5"
    cfg.rcnn.input_size, cfg.rcnn.context_padding = 32, 2
    model = build_detector(cfg, 2).eval()
    straight = extract_features(model, ToyDataset(), FeatureCache(tmp_path / "a", PARAMS, chunk_size=20), 2,
                                progress=False)  # fmt: skip
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract_features(model, ToyDataset(fail_at=5), FeatureCache(tmp_path / "b", PARAMS, chunk_size=20), 2,
                         progress=False)  # fmt: skip
    partial = FeatureCache(tmp_path / "b", PARAMS, chunk_size=20)
    # images of 9 and 13 rows: chunks of images 0-1 and 2-3; image 4 was only buffered when it crashed
    assert partial.done_images == {100, 101, 102, 103} and not partial.complete
    resumed = extract_features(model, ToyDataset(), partial, 2, progress=False)
    assert resumed.complete
    a, b = read_all(straight), read_all(resumed)
    assert set(a) == {"features", "boxes", "image_ids", "is_gt", "ious", "max_iou", "gt_boxes", "gt_labels"}
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the rows of an image: its gt boxes first (IoU 1 with their own class), then its proposals
    first = a["image_ids"] == 101
    assert a["is_gt"][first].tolist()[:3] == [True, True, False]
    assert a["ious"][first][:2].float().tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert a["features"].dtype == torch.float16 and a["features"].shape[1] == model.pool5_dim
