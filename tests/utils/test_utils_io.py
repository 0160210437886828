"""rcnn.utils.io: the atomic write gives its file the mode a plain open() would, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

from rcnn.utils.io import atomic_save, atomic_write_json, atomic_write_text


def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    expected = stat.S_IMODE(os.stat(plain).st_mode)
    written = [
        atomic_write_text("x", tmp_path / "a.txt"),
        atomic_write_json({"a": 1}, tmp_path / "b.json"),
        atomic_save({"a": 1}, tmp_path / "c.pth"),
    ]
    for path in written:
        assert stat.S_IMODE(os.stat(path).st_mode) == expected, path
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.json", "c.pth", "plain.txt"]  # no temporary left
