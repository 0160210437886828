"""The selective search benchmark's annotated composites and its report (without OpenCV)."""

from __future__ import annotations

import numpy as np
import pytest

from rcnn.proposals.recall import mabo, proposal_recall
from rcnn.proposals.selective_search import selective_search
from tools.benchmarks.composites import load_photo, make_composite, make_composites
from tools.benchmarks.real_photos import load_real_photos
from tools.benchmarks.selective_search import main, run, to_markdown


def test_composite_boxes_are_tight_around_changed_pixels_and_do_not_overlap():
    photo = np.full((120, 160, 3), 128, dtype=np.uint8)
    image, boxes, kinds = make_composite(photo, np.random.default_rng(0), num_objects=5)
    assert 1 <= len(boxes) <= 5 and len(kinds) == len(boxes)
    changed = (image != photo).any(axis=2)
    covered = np.zeros_like(changed)
    for x1, y1, x2, y2 in boxes.astype(int):
        inside = changed[y1:y2, x1:x2]
        # Tight: the object touches all four sides of its box (exclusive ends).
        assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
        assert not covered[y1:y2, x1:x2].any()
        covered[y1:y2, x1:x2] = True
    assert not (changed & ~covered).any()


def test_composites_are_deterministic():
    a = make_composites(["chelsea"], per_photo=2, seed=5)
    b = make_composites(["chelsea"], per_photo=2, seed=5)
    assert [c.name for c in a] == ["chelsea-0", "chelsea-1"]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.image, y.image)
        np.testing.assert_array_equal(x.boxes, y.boxes)
    assert not np.array_equal(a[0].image, a[1].image)
    assert load_photo("camera").shape == (512, 512, 3)


def test_run_reports_speed_and_quality(monkeypatch, capsys, tmp_path):
    small = np.ascontiguousarray(load_photo("chelsea")[::3, ::3])
    monkeypatch.setattr("tools.benchmarks.selective_search.load_photo", lambda name: small)
    monkeypatch.setattr(
        "tools.benchmarks.composites.load_photo",
        lambda name: np.ascontiguousarray(load_photo(name)[::3, ::3]),
    )
    result = run(
        "single",
        photos=("chelsea",),
        real_photos=False,
        composite_photos=("chelsea",),
        repeats=2,
        composites_per_photo=1,
        synthetic_images=0,
        variants={"k50": {"k_values": (50,)}},
        log=lambda msg: None,
    )
    assert result["methods"] == ["rcnn", "rcnn k50"]
    speed = result["speed"]["chelsea"]
    assert speed["shape"] == [100, 151] and len(speed["rcnn"]["runs"]) == 2
    assert speed["rcnn k50"]["boxes"] > speed["rcnn"]["boxes"] > 0
    quality = result["quality"]["composites"]["rcnn"]["all"]
    assert 0 < quality["mabo"] <= 1 and 0 <= quality["recall@0.5"] <= 1
    text = to_markdown(result)
    assert "| chelsea 100x151 |" in text and "| rcnn k50 | all |" in text

    monkeypatch.setattr("tools.benchmarks.selective_search.run", lambda *a, **k: result)
    out = tmp_path / "table.md"
    assert main(["--mode", "single", "--markdown", str(out)]) == 0
    assert out.read_text() == text
    assert "chelsea 100x151" in capsys.readouterr().out


def test_real_photo_quality_is_scored_on_the_timed_runs_proposals():
    result = run(
        "single", photos=("chelsea",), repeats=1, composites_per_photo=0, synthetic_images=0, log=print
    )
    assert list(result["quality"]) == ["real photos"]
    annotated = result["annotated"]["real photos"]
    assert annotated["images"] == 1 and annotated["boxes"] == len(load_real_photos(["chelsea"])[0].boxes)
    assert annotated["seconds"]["rcnn"] == result["speed"]["chelsea"]["rcnn"]["seconds"] > 0
    scores = result["quality"]["real photos"]["rcnn"]
    assert scores["all"]["boxes"] == result["speed"]["chelsea"]["rcnn"]["boxes"]
    # The same proposals scored again from scratch: the set's figures are those of the timed run's boxes.
    photo = load_real_photos(["chelsea"])[0]
    boxes = selective_search(photo.image, "single")
    assert scores["all"]["mabo"] == pytest.approx(mabo([boxes], [photo.boxes]))
    assert scores["all"]["recall@0.7"] == pytest.approx(proposal_recall([boxes], [photo.boxes], 0.7))
    assert scores["top500"]["mabo"] <= scores["all"]["mabo"]
    text = to_markdown(result)
    assert "Annotated set `real photos`: 1 images" in text and "(drawn by hand)" in text
    assert "| MABO | s / image |" in text and "time / opencv" not in text
