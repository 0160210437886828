"""build_sgd, setup_logger / MetricsWriter and the single-process behaviour of the distributed helpers."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from torch import nn

from rcnn.engine.logging import MetricsWriter, read_metrics, setup_logger
from rcnn.engine.optim import build_sgd
from rcnn.utils import comm as du


def test_build_sgd_groups_and_frozen_parameters():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    model[0].weight.requires_grad_(False)
    opt = build_sgd(model, 0.1, momentum=0.8, weight_decay=1e-3, weight_decay_norm=0.0)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 1e-3 and no_decay["weight_decay"] == 0.0
    assert {id(p) for p in no_decay["params"]} == {id(model[1].weight), id(model[1].bias)}
    assert id(model[0].weight) not in {id(p) for g in opt.param_groups for p in g["params"]}
    assert decay["momentum"] == 0.8 and decay["lr"] == 0.1
    single = build_sgd(model, 0.1)
    assert len(single.param_groups) == 1
    with pytest.raises(ValueError, match="no trainable"):
        build_sgd(nn.Linear(1, 1).requires_grad_(False), 0.1)


def test_metrics_writer_jsonl_tensorboard_and_purge(tmp_path):
    with MetricsWriter(tmp_path) as w:
        for it in (1, 2, 3, 4):
            w.write({"loss": torch.tensor(float(it)), "lr": 0.1, "bad": float("nan")}, step=it)
    records = read_metrics(tmp_path)
    assert [r["iteration"] for r in records] == [1, 2, 3, 4]
    assert records[2]["loss"] == 3.0 and records[0]["bad"] == "nan"
    assert any(p.name.startswith("events.out.tfevents") for p in tmp_path.iterdir())
    # A run resumed from step 2 drops what the interrupted run had logged after it.
    with MetricsWriter(tmp_path, purge_after=2, tensorboard=False) as w:
        w.write({"loss": 30.0}, step=3)
    assert [(r["iteration"], r["loss"]) for r in read_metrics(tmp_path)] == [(1, 1.0), (2, 2.0), (3, 30.0)]


def test_metrics_writer_disabled_and_epoch_key(tmp_path):
    w = MetricsWriter(tmp_path / "off", enabled=False)
    w.write({"loss": 1.0}, step=1)
    w.close()
    assert not (tmp_path / "off").exists()
    with MetricsWriter(tmp_path, step_key="epoch", tensorboard=False) as w:
        w.write({"top1": 0.5}, step=3)
    assert json.loads((tmp_path / "metrics.jsonl").read_text()) == {"epoch": 3, "top1": 0.5}


def test_setup_logger_rank0_file_and_console(tmp_path, capsys):
    logger = setup_logger(tmp_path, rank=0, names=("rcnn_test_a",))
    logger.info("hello %d", 7)
    assert "hello 7" in (tmp_path / "log.txt").read_text()
    assert "hello 7" in capsys.readouterr().err
    setup_logger(tmp_path, rank=1, names=("rcnn_test_a",))  # replaces the handlers
    logging.getLogger("rcnn_test_a").info("quiet")
    assert "quiet" not in capsys.readouterr().err
    assert "quiet" in (tmp_path / "log_rank1.txt").read_text()
    for h in list(logging.getLogger("rcnn_test_a").handlers):
        h.close()
        logging.getLogger("rcnn_test_a").removeHandler(h)


def test_single_process_defaults(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not du.init_distributed("cpu")
    assert du.get_rank() == 0 and du.get_world_size() == 1 and du.is_main_process()
    du.synchronize()
    out = du.all_reduce_dict({"b": torch.tensor(2.0, requires_grad=True), "a": torch.tensor(1.0)})
    assert list(out) == ["a", "b"] and not out["b"].requires_grad
    assert du.all_gather_object({"x": 1}) == [{"x": 1}]
    model = nn.Linear(1, 1)
    assert du.wrap_ddp(model, torch.device("cpu")) is model
    assert du.unwrap_model(nn.DataParallel(model)) is model


def test_select_device(monkeypatch):
    assert du.select_device("cpu") == torch.device("cpu")
    assert du.select_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        du.select_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert du.select_device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        du.select_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert du.select_device("auto") == torch.device("cuda", 1)
    assert du.select_device("cuda:0") == torch.device("cuda", 0)
    with pytest.raises(RuntimeError, match="only 2 CUDA"):
        du.select_device("cuda:2")


def test_windowed_means_and_flatten_metrics():
    from rcnn.engine.logging import WindowedMeans, flatten_metrics

    w = WindowedMeans()
    w.add({"a": 1.0, "b": torch.tensor(2.0)})
    w.add({"a": 3.0, "b": 4.0})
    assert w.pop_means() == {"a": 2.0, "b": 3.0}
    assert w.pop_means() == {}
    flat = flatten_metrics({"ap": 0.5, "per": {"cat": torch.tensor(0.25), "list": [1]}, "ok": True}, "eval")
    assert flat == {"eval/ap": 0.5, "eval/per/cat": 0.25, "eval/ok": True}


def test_seed_all_makes_every_generator_repeat():
    import random

    import numpy as np

    from rcnn.utils.rng import seed_all

    seed_all(5)
    first = (random.random(), float(np.random.rand()), torch.rand(2))
    seed_all(5)
    second = (random.random(), float(np.random.rand()), torch.rand(2))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])
