"""ProposalCache: round trip, parameter checks naming the keys, atomic writes, and the dataset layout."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from rcnn.data.coco import CocoDetection
from rcnn.proposals.cache import PARAMS_FILE, ProposalCache, ProposalCacheError, ProposalsReader

PARAMS = {"method": "selective_search", "mode": "fast", "seed": 0, "min_size": 0.0, "max_boxes": 2000}


def boxes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 50, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, 30, (n, 2))], axis=1).astype(np.float32)


def test_round_trip_has_missing(tmp_path):
    cache = ProposalCache(tmp_path / "c", PARAMS)
    assert json.loads((tmp_path / "c" / PARAMS_FILE).read_text()) == PARAMS
    b = boxes(7)
    path = cache.put(12, b.astype(np.float64))  # stored as float32
    assert path == str(tmp_path / "c" / "12.npy")
    got = cache.get(12)
    assert got.dtype == np.float32 and got.shape == (7, 4)
    np.testing.assert_array_equal(got, b)
    cache.put(3, np.zeros((0,)))  # an image without proposals
    assert cache.get(3).shape == (0, 4)
    assert cache.has(12) and cache.has(3) and not cache.has(4)
    assert cache.missing([4, 12, 9, 3, 1]) == [4, 9, 1]  # order kept
    with pytest.raises(KeyError, match="image 4"):
        cache.get(4)


def test_bad_arrays_name_the_image(tmp_path):
    cache = ProposalCache(tmp_path, PARAMS)
    with pytest.raises(ProposalCacheError, match=r"image 5: .*shape \(P, 4\), got \(3, 5\)"):
        cache.put(5, np.zeros((3, 5)))
    bad = boxes(2)
    bad[1, 2] = np.nan
    with pytest.raises(ProposalCacheError, match="image 6: .*NaN"):
        cache.put(6, bad)
    assert cache.missing([5, 6]) == [5, 6]


def test_reopen_same_params_keeps_entries(tmp_path):
    ProposalCache(tmp_path, PARAMS).put(1, boxes(3))
    again = ProposalCache(tmp_path, dict(reversed(list(PARAMS.items()))))  # key order does not matter
    np.testing.assert_array_equal(again.get(1), boxes(3))


def test_params_mismatch_names_the_keys(tmp_path):
    ProposalCache(tmp_path, PARAMS).put(1, boxes(3))
    other = {**PARAMS, "mode": "quality", "max_boxes": 500}
    with pytest.raises(ProposalCacheError) as info:
        ProposalCache(tmp_path, other)
    message = str(info.value)
    assert "differing keys: max_boxes, mode" in message
    assert "'fast'" in message and "'quality'" in message and str(tmp_path) in message
    assert "seed" not in message.split("differing keys:")[1]
    with pytest.raises(ProposalCacheError, match="differing keys: resize_to"):
        ProposalCache(tmp_path, {**PARAMS, "resize_to": 500})  # a key the cache did not record
    assert json.loads((tmp_path / PARAMS_FILE).read_text()) == PARAMS  # left untouched


def test_unknown_npy_folder_and_bad_params_file_refused(tmp_path):
    np.save(tmp_path / "1.npy", boxes(2))
    with pytest.raises(ProposalCacheError, match="no params.json"):
        ProposalCache(tmp_path, PARAMS)
    other = tmp_path / "other"
    other.mkdir()
    (other / PARAMS_FILE).write_text("{not json")
    with pytest.raises(ProposalCacheError, match="params.json: cannot read"):
        ProposalCache(other, PARAMS)


def test_put_is_atomic(tmp_path, monkeypatch):
    """A write that dies half way leaves the previous file whole and no partial .npy behind."""
    cache = ProposalCache(tmp_path, PARAMS)
    cache.put(7, boxes(5))

    def dying_save(file, array, *args, **kwargs):
        file.write(b"\x93NUMPY partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "save", dying_save)
    with pytest.raises(OSError, match="disk full"):
        cache.put(7, boxes(9, seed=1))
    with pytest.raises(OSError, match="disk full"):
        cache.put(8, boxes(9, seed=1))
    monkeypatch.undo()
    np.testing.assert_array_equal(cache.get(7), boxes(5))
    assert not cache.has(8) and cache.missing([7, 8]) == [8]
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".npy")) == ["7.npy"]


def test_folder_is_a_dataset_proposals_file(tmp_path):
    """CocoDetection reads the cache folder directly; ProposalsReader reads folders and .npz alike."""
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "a.png"), np.full((40, 50, 3), 128, np.uint8))
    ann = {
        "images": [{"id": 21, "file_name": "a.png", "height": 40, "width": 50}],
        "annotations": [{"id": 1, "image_id": 21, "category_id": 1, "bbox": [5, 5, 20, 10], "area": 200,
                         "iscrowd": 0}],
        "categories": [{"id": 1, "name": "thing"}],
    }  # fmt: skip
    (tmp_path / "ann.json").write_text(json.dumps(ann))
    cache = ProposalCache(tmp_path / "props", PARAMS)
    cache.put(21, [[1, 2, 30, 20], [0, 0, 50, 40]])
    _, target = CocoDetection(images, tmp_path / "ann.json", proposals_file=cache.directory)[0]
    np.testing.assert_array_equal(target["proposals"].numpy(), [[1, 2, 30, 20], [0, 0, 50, 40]])

    np.savez(tmp_path / "p.npz", **{"21": boxes(4)})
    with ProposalsReader(tmp_path / "p.npz") as reader:
        np.testing.assert_array_equal(reader.get(21), boxes(4))
        with pytest.raises(KeyError, match="image 22"):
            reader.get(22)
    with ProposalsReader(cache.directory) as reader:
        assert reader.get(21).shape == (2, 4)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ProposalsReader(tmp_path / "nowhere")
