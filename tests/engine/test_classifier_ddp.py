"""Two real processes (torchrun, gloo on the CPU) training a classifier through the one Trainer: each rank
keeps its own random stream (augmentation and dropout draws) across an interrupt and resume, and the
resumed run matches an uninterrupted one iteration by iteration on every rank."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from rcnn.data.synthetic import make_classification_dataset

SCRIPT = """
import hashlib, json, os
import torch
from rcnn.config import load_config
from rcnn.config_schema import ClassificationConfig
from rcnn.engine.trainer import TrainingInterrupted
from rcnn.tasks.classifier_run import ClassifierRun
from rcnn.utils import comm as du

assert du.init_distributed("cpu")
rank = du.get_rank()
DATA, OUT, RES = {data!r}, {out!r}, {res!r}


def make(name, record):
    cfg = load_config(None, ClassificationConfig, [
        f"data.root={{DATA}}", f"output.dir={{os.path.join(OUT, name)}}", "model.options={{width: 8}}",
        "data.resize=36", "data.crop=32", "data.num_workers=0", "solver.device=cpu",
        "solver.batch_size=8", "solver.epochs=2", "solver.base_lr=0.05", "test.batch_size=8",
        "test.ten_crop=false",
    ])
    run = ClassifierRun(cfg, torch.device("cpu"), progress=False)

    def note(trainer):  # this rank's loss and the state of its RNG after the iteration's draws
        rng = hashlib.sha1(torch.get_rng_state().numpy().tobytes()).hexdigest()
        record.append([trainer.iter, trainer.last_losses["loss_cls"], rng])

    run.trainer.callbacks.append(note)
    return run


straight = []
make("a", straight).train()

def stop_on_rank1(trainer):
    if rank == 1 and trainer.iter == 1:
        trainer.request_stop()

interrupted = []
run = make("b", interrupted)
run.trainer.callbacks.append(stop_on_rank1)
try:
    run.train()
    stopped_at = None
except TrainingInterrupted as e:
    stopped_at = e.iteration
resumed = []
run = make("b", resumed)
run.resume("latest")
run.train()
with open(os.path.join(RES, f"rank{{rank}}.json"), "w") as f:
    json.dump({{"straight": straight, "interrupted": interrupted, "resumed": resumed,
               "stopped_at": stopped_at, "iters_per_epoch": run.iters_per_epoch}}, f)
du.destroy_distributed()
"""


def test_two_process_classifier_resume_keeps_each_ranks_random_stream(tmp_path):
    data, out, res = tmp_path / "data", tmp_path / "out", tmp_path / "res"
    res.mkdir()
    make_classification_dataset(data, num_train_per_class=4, num_val_per_class=1, image_size=32, workers=1)
    script = tmp_path / "ddp_classifier.py"
    script.write_text(textwrap.dedent(SCRIPT.format(data=str(data), out=str(out), res=str(res))))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ranks = [json.loads((res / f"rank{r}.json").read_text()) for r in (0, 1)]

    # 36 images, 18 per rank, 4 per batch: 4 iterations per epoch, 8 in all.
    assert [r["iters_per_epoch"] for r in ranks] == [4, 4]
    assert [[it for it, _, _ in r["straight"]] for r in ranks] == [list(range(1, 9))] * 2
    # The stop asked for on rank 1 after iteration 1 reached rank 0 in iteration 2: mid-epoch.
    assert [r["stopped_at"] for r in ranks] == [2, 2]

    # Each rank draws its own augmentations: the random streams differ between the ranks.
    rng0 = [h for _, _, h in ranks[0]["straight"]]
    rng1 = [h for _, _, h in ranks[1]["straight"]]
    assert all(a != b for a, b in zip(rng0, rng1))

    for r in ranks:
        continued = r["interrupted"] + r["resumed"]
        assert [it for it, _, _ in continued] == list(range(1, 9))
        # After the resume every rank continues its own stream, exactly as without the interruption ...
        assert [h for _, _, h in continued] == [h for _, _, h in r["straight"]]
        # ... so it sees the same augmented images and computes the same losses.
        assert [loss for _, loss, _ in continued] == pytest.approx([loss for _, loss, _ in r["straight"]])

    a = torch.load(out / "a" / "model_final.pth", weights_only=True)["model"]
    b = torch.load(out / "b" / "model_final.pth", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
