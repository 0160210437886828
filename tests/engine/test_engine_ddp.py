"""Two real processes (torchrun, gloo on the CPU) training with the Trainer under DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from rcnn.engine.checkpoint import Checkpointer
from rcnn.engine.logging import read_metrics

HERE = os.path.dirname(os.path.abspath(__file__))

SCRIPT = """
import json, os, sys
sys.path.insert(0, {here!r})
import torch
from engine_toy import ToyRegressor, toy_loader
from rcnn.engine import distributed as du
from rcnn.engine.trainer import Trainer

assert du.init_distributed("cpu")
rank, world_size = du.get_rank(), du.get_world_size()
torch.manual_seed(rank)  # different initial weights: DDP must start every rank from rank 0's
loader = toy_loader(rank=rank, world_size=world_size)
seen = []

def record(trainer):
    seen.append([trainer.last_losses["total_loss"], trainer.last_reduced_losses["total_loss"]])

trainer = Trainer(ToyRegressor(), loader, sampler=loader.batch_sampler, max_iter=4, output_dir={out!r},
                  device="cpu", log_period=1, checkpoint_period=2, callbacks=[record], progress=False,
                  tensorboard=False)
trainer.train()
torch.save(trainer.unwrapped_model.state_dict(), os.path.join({res!r}, f"params{{rank}}.pt"))
with open(os.path.join({res!r}, f"rank{{rank}}.json"), "w") as f:
    json.dump({{"world_size": world_size, "wrapper": type(trainer.model).__name__,
               "saved": trainer.checkpointer.saved, "losses": seen}}, f)
du.destroy_distributed()
"""


def test_two_process_ddp_training(tmp_path):
    out, res = tmp_path / "out", tmp_path / "res"
    res.mkdir()
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(SCRIPT.format(here=HERE, out=str(out), res=str(res))))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    ranks = [json.loads((res / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert {r["wrapper"] for r in ranks} == {"DistributedDataParallel"}

    p0, p1 = (torch.load(res / f"params{r}.pt") for r in (0, 1))
    assert p0.keys() == p1.keys() and all(torch.equal(p0[k], p1[k]) for k in p0)

    assert ranks[0]["saved"] == [str(out / "model_0000002.pth"), str(out / "model_final.pth")]
    assert ranks[1]["saved"] == []
    assert sorted(p for p in os.listdir(out) if p.endswith(".pth")) == [
        "model_0000002.pth",
        "model_final.pth",
    ]
    assert (out / "last_checkpoint").read_text().strip() == "model_final.pth"

    # Each rank trains on its own shard; logged losses are the average over both ranks.
    local0 = [loss for loss, _ in ranks[0]["losses"]]
    local1 = [loss for loss, _ in ranks[1]["losses"]]
    assert local0 != local1
    reduced = [(a + b) / 2 for a, b in zip(local0, local1)]
    for r in ranks:
        assert [avg for _, avg in r["losses"]] == pytest.approx(reduced, rel=1e-6)
    assert [m["total_loss"] for m in read_metrics(out)] == pytest.approx(reduced, rel=1e-6)

    state = Checkpointer(out).load(Checkpointer(out).latest())
    assert state["iteration"] == 4 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])
