"""The Trainer: exact resume, NaN stop, signal checkpoints, metrics, evaluation and AMP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from helpers.engine_toy import ToyRegressor, toy_loader

from rcnn.engine.checkpoint import LAST_CHECKPOINT, Checkpointer
from rcnn.engine.logging import read_metrics
from rcnn.engine.lr_scheduler import build_warmup_multistep_lr
from rcnn.engine.optim import build_sgd
from rcnn.engine.trainer import Trainer, TrainingInterrupted

HERE = os.path.dirname(os.path.abspath(__file__))


def make_trainer(output_dir, *, init_seed=0, max_iter=6, model=None, **kwargs):
    torch.manual_seed(init_seed)
    model = model or ToyRegressor()
    loader = toy_loader()
    optimizer = build_sgd(model, 0.05, momentum=0.9, weight_decay=1e-3)
    scheduler = build_warmup_multistep_lr(optimizer, steps=[4], gamma=0.5, warmup_iters=2, warmup_factor=0.1)
    options = dict(max_iter=max_iter, checkpoint_period=100, log_period=1, device="cpu", progress=False)
    options.update(kwargs)
    return Trainer(
        model,
        loader,
        optimizer=optimizer,
        scheduler=scheduler,
        sampler=loader.batch_sampler,
        output_dir=output_dir,
        **options,
    )


def losses(output_dir):
    return [(r["iteration"], r["loss_reg"], r["loss_l1"], r["lr"]) for r in read_metrics(output_dir)]


def stop_at(iteration):
    def callback(trainer):
        if trainer.iter == iteration:
            trainer.request_stop()

    return callback


def test_resumed_run_matches_an_uninterrupted_run_exactly(tmp_path):
    straight = make_trainer(tmp_path / "a", checkpoint_period=3)
    straight.train()
    reference = losses(tmp_path / "a")
    assert [r[0] for r in reference] == [1, 2, 3, 4, 5, 6]
    assert len({r[1] for r in reference}) == 6

    first = make_trainer(tmp_path / "b", callbacks=[stop_at(3)])
    with pytest.raises(TrainingInterrupted) as info:
        first.train()
    assert info.value.iteration == 3 and info.value.exit_code == 130
    assert Checkpointer(tmp_path / "b").latest() == str(tmp_path / "b" / "model_0000003.pth")

    resumed = make_trainer(tmp_path / "b", init_seed=99)  # another init: everything must come from the file
    assert resumed.resume("latest") == 3
    resumed.train()
    assert losses(tmp_path / "b") == reference  # bitwise, including the lr schedule
    for p, q in zip(straight.unwrapped_model.parameters(), resumed.unwrapped_model.parameters()):
        assert torch.equal(p, q)
    assert resumed.last_checkpoint == str(tmp_path / "b" / "model_final.pth")
    assert Checkpointer(tmp_path / "b").load(resumed.last_checkpoint)["iteration"] == 6


def test_resume_without_a_checkpoint_is_an_error(tmp_path):
    trainer = make_trainer(tmp_path)
    with pytest.raises(FileNotFoundError, match=LAST_CHECKPOINT):
        trainer.resume("latest")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        trainer.resume(tmp_path / "missing.pth")


def test_non_finite_loss_names_iteration_and_every_term(tmp_path):
    trainer = make_trainer(tmp_path, model=ToyRegressor(nan_at_call=2))
    before = [p.detach().clone() for p in trainer.unwrapped_model.parameters()]
    trainer.max_iter = 5

    seen = []
    trainer.callbacks.append(
        lambda t: seen.extend(p.detach().clone() for p in t.unwrapped_model.parameters())
    )
    with pytest.raises(
        FloatingPointError, match=r"iteration 2: loss_l1=0\.\d+, loss_reg=nan, total_loss=nan"
    ):
        trainer.train()
    assert trainer.iter == 1
    assert not any(torch.equal(a, b) for a, b in zip(before, seen))  # iteration 1 did update
    after = list(trainer.unwrapped_model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(seen, after))  # the NaN step did not
    assert not (tmp_path / LAST_CHECKPOINT).exists()


def test_sigterm_in_process_checkpoints_and_restores_handlers(tmp_path):
    previous = signal.getsignal(signal.SIGTERM)

    def send_sigterm(trainer):
        if trainer.iter == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    trainer = make_trainer(tmp_path, callbacks=[send_sigterm], checkpoint_period=1, log_period=5)
    with pytest.raises(TrainingInterrupted, match="SIGTERM after iteration 2") as info:
        trainer.train()
    assert info.value.exit_code == 143
    assert info.value.checkpoint == str(tmp_path / "model_0000002.pth")
    assert signal.getsignal(signal.SIGTERM) is previous
    assert [r["iteration"] for r in read_metrics(tmp_path)] == [2]  # the partial window is logged
    assert sorted(p for p in os.listdir(tmp_path) if p.endswith(".pth")) == [
        "model_0000001.pth",
        "model_0000002.pth",
    ]


def test_sigterm_to_a_training_process(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {os.path.dirname(HERE)!r})
            import torch
            from helpers.engine_toy import ToyRegressor, toy_loader
            from rcnn.engine.trainer import Trainer, TrainingInterrupted

            torch.manual_seed(0)
            loader = toy_loader()

            def announce(trainer):
                if trainer.iter == 3:
                    print("running", flush=True)

            trainer = Trainer(ToyRegressor(sleep=0.02), loader, sampler=loader.batch_sampler, max_iter=100000,
                              output_dir={str(tmp_path / "out")!r}, device="cpu", log_period=1000,
                              checkpoint_period=1000, callbacks=[announce], progress=False, tensorboard=False)
            try:
                trainer.train()
            except TrainingInterrupted as e:
                print(e, flush=True)
                sys.exit(e.exit_code)
            """
        )
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout.readline().strip() == "running"
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "training stopped by SIGTERM" in out
    ckpt = Checkpointer(tmp_path / "out")
    state = ckpt.load(ckpt.latest())
    assert 3 <= state["iteration"] < 1000
    assert state["data"]["batches"] == state["iteration"]
    assert read_metrics(tmp_path / "out")[-1]["iteration"] == state["iteration"]


def test_periodic_checkpoints_eval_and_metrics(tmp_path):
    calls = []

    def eval_fn(model):
        calls.append(model.training)
        return {"ap": 0.5, "per_class": {"cat": 0.25}, "note": "ok"}

    trainer = make_trainer(
        tmp_path,
        max_iter=5,
        checkpoint_period=2,
        log_period=2,
        eval_fn=eval_fn,
        eval_period=3,
        clip_grad_norm=1.0,
    )
    assert trainer.train() == {"ap": 0.5, "per_class": {"cat": 0.25}, "note": "ok"}
    assert calls == [True, True]  # at 3 and at the end; the model is handed over as is
    assert trainer.unwrapped_model.training
    names = sorted(p for p in os.listdir(tmp_path) if p.endswith(".pth"))
    assert names == ["model_0000002.pth", "model_0000004.pth", "model_final.pth"]
    records = read_metrics(tmp_path)
    train_records = [r for r in records if "loss_reg" in r]
    assert [r["iteration"] for r in train_records] == [2, 4, 5]
    for r in train_records:
        assert {"lr", "total_loss", "time", "data_time", "grad_norm"} <= set(r)
        assert r["total_loss"] == pytest.approx(r["loss_reg"] + r["loss_l1"])
    evals = [r for r in records if "eval/ap" in r]
    assert [(r["iteration"], r["eval/per_class/cat"], r["eval/note"]) for r in evals] == [
        (3, 0.25, "ok"),
        (5, 0.25, "ok"),
    ]
    assert any(p.startswith("events.out.tfevents") for p in os.listdir(tmp_path))


def test_amp_bf16_on_cpu_and_from_config(tmp_path, monkeypatch):
    from rcnn.config_schema import SolverConfig
    from rcnn.utils import comm as distributed

    monkeypatch.setattr(distributed, "cpu_has_bf16", lambda: True)  # whatever this machine's CPU has
    torch.manual_seed(0)
    model = ToyRegressor()
    loader = toy_loader()
    solver = SolverConfig(
        device="cpu", base_lr=0.01, warmup_iters=2, steps=[3], max_iter=4, amp=True, log_period=1
    )
    trainer = Trainer.from_config(
        solver,
        model,
        loader,
        sampler=loader.batch_sampler,
        output_dir=tmp_path,
        progress=False,
        tensorboard=False,
    )
    assert trainer.amp_dtype == torch.bfloat16 and not trainer.scaler.is_enabled()
    trainer.train()
    lrs = [r["lr"] for r in read_metrics(tmp_path)]
    assert lrs == pytest.approx([0.01 * 0.001, 0.01 * (0.001 * 0.5 + 0.5), 0.01, 0.001])
    assert trainer.iter == 4 and trainer.train() == {}  # already done: nothing happens


def test_amp_falls_back_to_fp32_on_a_cpu_without_bf16(monkeypatch):
    from rcnn.utils import comm as distributed

    monkeypatch.setattr(distributed, "cpu_has_bf16", lambda: False)
    cpu = torch.device("cpu")
    with pytest.warns(UserWarning, match="no native bf16"):
        assert distributed.resolve_amp_dtype(True, cpu, None) is None
    assert distributed.resolve_amp_dtype(True, cpu, "bf16") == torch.bfloat16  # asked for by name: kept
    assert distributed.resolve_amp_dtype(True, torch.device("cuda"), None) == torch.float16
    assert distributed.resolve_amp_dtype(False, cpu, None) is None
