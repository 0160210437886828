"""Classifier training loop: auxiliary-loss weighting, non-finite loss stop, signal checkpoints."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from torch import nn

import backbones
from rcnn.config import load_config
from rcnn.config_schema import ClassificationConfig
from rcnn.data.synthetic import make_classification_dataset
from rcnn.engine.checkpoint import Checkpointer
from rcnn.engine.trainer import TrainingInterrupted
from rcnn.tasks.classification import classification_loss
from rcnn.tasks.classifier_run import ClassifierRun
from rcnn.utils.io import load_checkpoint


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("cls")
    make_classification_dataset(root, num_train_per_class=3, num_val_per_class=1, image_size=32, workers=1)
    return str(root)


def tiny_config(root: str, out: str, *overrides: str) -> ClassificationConfig:
    return load_config(
        None,
        ClassificationConfig,
        [
            f"data.root={root}",
            f"output.dir={out}",
            "model.options={width: 8}",
            "data.resize=36",
            "data.crop=32",
            "data.num_workers=0",
            "solver.device=cpu",
            "solver.batch_size=9",
            "solver.epochs=2",
            "solver.base_lr=0.05",
            "test.batch_size=8",
            "test.ten_crop=false",
            *overrides,
        ],
    )


class FakeAuxNet(nn.Module):
    """Fixed outputs: main logits and two auxiliary logits."""

    def __init__(self, main, aux1, aux2):
        super().__init__()
        self.outputs = (main, aux1, aux2)

    def forward(self, x):
        return self.outputs


def test_aux_loss_weighting_with_fake_tuple_model():
    torch.manual_seed(0)
    main, aux1, aux2 = torch.randn(4, 5), torch.randn(4, 5), torch.randn(4, 5)
    targets = torch.tensor([0, 1, 2, 3])
    ce = nn.CrossEntropyLoss()
    total, main_loss, logits = classification_loss(FakeAuxNet(main, aux1, aux2)(None), targets, ce, 0.3)
    assert torch.equal(logits, main)
    assert main_loss == pytest.approx(float(ce(main, targets)))
    expected = ce(main, targets) + 0.3 * (ce(aux1, targets) + ce(aux2, targets))
    assert total == pytest.approx(float(expected))
    # A plain logits output: the total is the main loss.
    total, main_loss, _ = classification_loss(main, targets, ce, 0.3)
    assert total == main_loss


def test_googlenet_training_output_gets_aux_losses():
    torch.manual_seed(0)
    model = backbones.build_classifier("googlenet", num_classes=4).train()
    images, targets = torch.randn(1, 3, 224, 224), torch.tensor([3])  # the paper's aux heads need 224
    outputs = model(images)
    assert isinstance(outputs, tuple) and len(outputs) == 3
    ce = nn.CrossEntropyLoss()
    total, main_loss, logits = classification_loss(outputs, targets, ce, 0.3)
    with torch.no_grad():
        aux = ce(outputs[1], targets) + ce(outputs[2], targets)
        assert float(total) == pytest.approx(float(main_loss + 0.3 * aux), rel=1e-6)
        assert float(total) > float(main_loss)
    total.backward()  # the auxiliary heads get gradients
    assert model.aux1.fc2.weight.grad is not None and model.aux1.fc2.weight.grad.abs().sum() > 0


def test_non_finite_loss_names_epoch_and_iteration(data_root, tmp_path):
    trainer = ClassifierRun(tiny_config(data_root, str(tmp_path)), torch.device("cpu"), progress=False)
    trainer.model.register_forward_hook(lambda module, inputs, output: output * float("nan"))
    with pytest.raises(FloatingPointError, match=r"non-finite loss nan at epoch 1, iteration 1/"):
        trainer.train()
    assert not os.path.exists(os.path.join(tmp_path, "model_final.pth"))


def test_sigint_saves_checkpoint_and_resume_reruns_the_epoch(data_root, tmp_path):
    cfg = tiny_config(data_root, str(tmp_path), "solver.batch_size=4")
    trainer = ClassifierRun(cfg, torch.device("cpu"), progress=False)
    assert trainer.iters_per_epoch > 1
    calls = []

    def interrupt(module, inputs, output):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # delivered to the trainer's handler, not to pytest

    trainer.model.register_forward_hook(interrupt)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    handler = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a background job
    with pytest.raises(TrainingInterrupted) as info:
        trainer.train()
    assert info.value.exit_code == 130
    assert len(calls) == 1  # stopped after the iteration in which the signal arrived
    path = Checkpointer(str(tmp_path)).latest()
    assert path == info.value.checkpoint and path.endswith("checkpoint_0000_interrupted.pth")
    state = load_checkpoint(path)
    assert state["epoch"] == 0
    assert any(not torch.equal(state["model"][k], before[k]) for k in before)  # the step was kept
    assert signal.getsignal(signal.SIGINT) is handler  # handlers restored

    resumed = ClassifierRun(cfg, torch.device("cpu"), progress=False)
    assert resumed.resume("latest") == 0
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, state["model"][key])


def test_plateau_schedule_warms_up_per_iteration_then_steps_once_per_epoch(data_root, tmp_path):
    cfg = tiny_config(
        data_root,
        str(tmp_path),
        "solver.batch_size=4",
        "solver.lr_schedule=plateau",
        "solver.warmup_epochs=1",
        "solver.plateau_patience=0",
    )
    run = ClassifierRun(cfg, torch.device("cpu"), progress=False)
    n = run.iters_per_epoch
    lrs = []
    run.trainer.callbacks.append(lambda trainer: lrs.append(trainer.lr))
    result = run.train()
    assert result.epoch == 2 and len(lrs) == 2 * n
    assert lrs[:n] == sorted(lrs[:n]) and lrs[0] < 0.05 * 0.01  # linear warm-up from 0.001x
    assert lrs[n] == pytest.approx(0.05)  # warm-up over after the first epoch
    # Warm-up: one step per iteration of epoch 1; then one plateau step at the end of each epoch.
    assert run.trainer.scheduler.last_epoch == n + 2
    assert [h["epoch"] for h in result.history] == [1, 2]
