"""Atomic checkpoints, the last_checkpoint pointer and RNG state capture."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from rcnn.engine.checkpoint import LAST_CHECKPOINT, Checkpointer
from rcnn.utils import io as ckpt_mod  # the atomic write the Checkpointer goes through
from rcnn.utils.io import atomic_save, load_checkpoint
from rcnn.utils.rng import capture_rng_state, restore_rng_state


def test_save_writes_file_then_pointer(tmp_path):
    ckpt = Checkpointer(tmp_path / "run")
    assert ckpt.latest() is None
    path = ckpt.save("model_0000010", model={"w": torch.arange(3.0)}, iteration=10)
    assert path == str(tmp_path / "run" / "model_0000010.pth")
    assert (tmp_path / "run" / LAST_CHECKPOINT).read_text().strip() == "model_0000010.pth"
    assert ckpt.latest() == path
    state = ckpt.load(ckpt.latest())
    assert state["iteration"] == 10
    assert torch.equal(state["model"]["w"], torch.arange(3.0))
    ckpt.save("model_final", iteration=20)
    assert ckpt.latest().endswith("model_final.pth")
    assert ckpt.saved == [path, str(tmp_path / "run" / "model_final.pth")]
    # No temporary files left behind.
    assert sorted(os.listdir(tmp_path / "run")) == [LAST_CHECKPOINT, "model_0000010.pth", "model_final.pth"]


def test_failed_write_keeps_previous_file_and_pointer(tmp_path, monkeypatch):
    ckpt = Checkpointer(tmp_path)
    ckpt.save("a", iteration=1)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save("a", iteration=2)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save("b", iteration=2)
    monkeypatch.undo()
    assert ckpt.load(ckpt.latest())["iteration"] == 1
    assert ckpt.latest().endswith("a.pth")
    assert sorted(os.listdir(tmp_path)) == ["a.pth", LAST_CHECKPOINT]


def test_pointer_written_after_checkpoint(tmp_path, monkeypatch):
    order = []
    real = ckpt_mod.os.replace

    def spy(src, dst):
        order.append(os.path.basename(dst))
        real(src, dst)

    monkeypatch.setattr(ckpt_mod.os, "replace", spy)
    Checkpointer(tmp_path).save("model_0000005", iteration=5)
    assert order == ["model_0000005.pth", LAST_CHECKPOINT]


def test_missing_files_are_errors_naming_the_path(tmp_path):
    ckpt = Checkpointer(tmp_path)
    missing = str(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        ckpt.load(missing)
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        ckpt.resolve(missing)
    with pytest.raises(FileNotFoundError, match=LAST_CHECKPOINT):
        ckpt.resolve("latest")
    (tmp_path / LAST_CHECKPOINT).write_text("gone.pth\n")
    with pytest.raises(FileNotFoundError, match="gone.pth"):
        ckpt.latest()


def test_disabled_checkpointer_writes_nothing(tmp_path):
    ckpt = Checkpointer(tmp_path / "x", enabled=False)
    path = ckpt.save("model_final", iteration=1)
    assert path.endswith("model_final.pth")
    assert not (tmp_path / "x").exists()
    assert ckpt.saved == []


def test_atomic_save_and_load(tmp_path):
    path = atomic_save({"a": torch.ones(2)}, tmp_path / "sub" / "f.pth")
    assert torch.equal(load_checkpoint(path)["a"], torch.ones(2))


def test_rng_state_roundtrip_through_a_weights_only_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    Checkpointer(tmp_path).save("rng", rng=capture_rng_state())
    expected = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pth", weights_only=True)["rng"])
    got = (random.random(), np.random.normal(), np.random.rand(), torch.rand(3))
    assert got[:3] == expected[:3]
    assert torch.equal(got[3], expected[3])
