"""Two real processes (torchrun, gloo on the CPU) training with the Trainer under DDP: synchronised
weights, averaged logged losses, rank-0-only checkpoints, a stop requested on one rank only, and an exact
resume of the interrupted run."""

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
sys.path.insert(0, os.path.dirname({here!r}))  # tests/: helpers
import torch
from helpers.engine_toy import ToyRegressor, toy_loader
from rcnn.utils import comm as du
from rcnn.engine.trainer import Trainer, TrainingInterrupted

assert du.init_distributed("cpu")
rank, world_size = du.get_rank(), du.get_world_size()
OUT, RES = {out!r}, {res!r}


def make(output_dir, seed, callbacks=()):
    torch.manual_seed(seed)  # a different init on every rank: DDP must start all from rank 0's weights
    loader = toy_loader(rank=rank, world_size=world_size)
    return Trainer(ToyRegressor(), loader, sampler=loader.batch_sampler, max_iter=4, output_dir=output_dir,
                   device="cpu", log_period=1, checkpoint_period=2, callbacks=list(callbacks), progress=False,
                   tensorboard=False)


seen = []
straight = make(os.path.join(OUT, "a"), rank,
                [lambda t: seen.append([t.last_losses["total_loss"], t.last_reduced_losses["total_loss"]])])
straight.train()

# Only rank 1 asks to stop (after iteration 1): both ranks must agree and stop after the same iteration.
def stop_on_rank1(trainer):
    if rank == 1 and trainer.iter == 1:
        trainer.request_stop()

interrupted = make(os.path.join(OUT, "b"), rank, [stop_on_rank1])
try:
    interrupted.train()
    stopped_at = None
except TrainingInterrupted as e:
    stopped_at = e.iteration
resumed = make(os.path.join(OUT, "b"), 100 + rank)
resumed.resume("latest")
resumed.train()

weights = {{"straight": straight.unwrapped_model.state_dict()}}
weights["resumed"] = resumed.unwrapped_model.state_dict()
torch.save(weights, os.path.join(RES, f"params{{rank}}.pt"))
with open(os.path.join(RES, f"rank{{rank}}.json"), "w") as f:
    json.dump({{"world_size": world_size, "wrapper": type(straight.model).__name__,
               "saved": straight.checkpointer.saved, "losses": seen, "stopped_at": stopped_at}}, f)
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
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    ranks = [json.loads((res / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert {r["wrapper"] for r in ranks} == {"DistributedDataParallel"}

    params = [torch.load(res / f"params{r}.pt") for r in (0, 1)]
    for run in ("straight", "resumed"):
        p0, p1 = params[0][run], params[1][run]
        assert p0.keys() == p1.keys() and all(torch.equal(p0[k], p1[k]) for k in p0)
    assert all(torch.equal(params[0]["straight"][k], params[0]["resumed"][k]) for k in params[0]["straight"])

    a = out / "a"
    assert ranks[0]["saved"] == [str(a / "model_0000002.pth"), str(a / "model_final.pth")]
    assert ranks[1]["saved"] == []
    checkpoints = sorted(p for p in os.listdir(a) if p.endswith(".pth"))
    assert checkpoints == ["model_0000002.pth", "model_final.pth"]

    # Each rank trains on its own shard; logged losses are the average over both ranks.
    local0 = [loss for loss, _ in ranks[0]["losses"]]
    local1 = [loss for loss, _ in ranks[1]["losses"]]
    assert local0 != local1
    reduced = [(x + y) / 2 for x, y in zip(local0, local1)]
    for r in ranks:
        assert [avg for _, avg in r["losses"]] == pytest.approx(reduced, rel=1e-6)
    assert [m["total_loss"] for m in read_metrics(a)] == pytest.approx(reduced, rel=1e-6)

    state = Checkpointer(a).load(Checkpointer(a).latest())
    assert state["iteration"] == 4 and len(state["rng"]) == 2
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])

    # The stop asked for on rank 1 after iteration 1 reached rank 0 through iteration 2's reduction.
    assert [r["stopped_at"] for r in ranks] == [2, 2]

    def losses(run):
        return [{k: v for k, v in m.items() if "time" not in k} for m in read_metrics(run)]

    assert losses(out / "b") == losses(a)  # the resumed run: exactly the same losses, bitwise
    assert len(losses(a)) == 4
