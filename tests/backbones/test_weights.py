"""load_pretrained: checkpoint layouts, class-count changes, and precise errors for everything else."""

from __future__ import annotations

import pickle
import re
import warnings

import pytest
import torch
import torchvision
from torch import nn

from backbones import (
    CLASSIFIERS,
    build_backbone,
    build_classifier,
    freeze_batchnorm,
    load_pretrained,
    related_networks,
)
from backbones.weights import describe_mismatch, load_state, read_state_dict


def _lenet(num_classes: int = 10, seed: int = 0, **options) -> nn.Module:
    torch.manual_seed(seed)
    return build_classifier("lenet5", num_classes=num_classes, **options)


def _same(a: nn.Module, b: nn.Module, skip: tuple[str, ...] = ()) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa if not k.startswith(skip))


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,  # torchvision / timm: a plain state_dict
        lambda sd: {"model": sd, "optimizer": {"lr": 0.1}, "epoch": 3},  # tools/train_classifier.py
        lambda sd: {"state_dict": sd, "epoch": 3},
        lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}},  # saved from DistributedDataParallel
        lambda sd: {f"_orig_mod.{k}": v for k, v in sd.items()},  # saved from torch.compile
    ],
    ids=["plain", "model", "state_dict", "ddp", "compiled"],
)
def test_checkpoint_layouts(tmp_path, wrap):
    source, target = _lenet(seed=0), _lenet(seed=1)
    assert not _same(source, target)
    path = tmp_path / "ckpt.pth"
    torch.save(wrap(source.state_dict()), path)
    assert load_pretrained(target, path) is target
    assert _same(source, target)


def test_different_number_of_classes_keeps_the_rest_and_warns(tmp_path):
    source, target = _lenet(10, seed=0), _lenet(5, seed=1)
    fresh_output = target.classifier.output.weight.clone()
    path = tmp_path / "imagenet.pth"
    torch.save(source.state_dict(), path)
    with pytest.warns(UserWarning, match=r"10 classes, the model 5.*classifier\.output") as record:
        load_pretrained(target, path)
    assert len(record) == 1 and str(path) in str(record[0].message)
    assert _same(source.features, target.features)
    assert torch.equal(source.classifier.f6.weight, target.classifier.f6.weight)
    assert torch.equal(target.classifier.output.weight, fresh_output)  # kept its initialisation

    with pytest.raises(ValueError, match="10 classes, the model 5"):
        load_pretrained(_lenet(5), path, strict_classes=True)


class _WithAux(nn.Module):
    """A trunk, a main classifier and an auxiliary classifier (GoogLeNet's pattern)."""

    def __init__(self, num_classes: int, hidden: int = 8):
        super().__init__()
        self.trunk = nn.Linear(4, hidden)
        self.aux = nn.Sequential(nn.Linear(hidden, 6), nn.ReLU(), nn.Linear(6, num_classes))
        self.fc = nn.Linear(hidden, num_classes)


def test_auxiliary_classifiers_are_class_layers_too(tmp_path):
    path = tmp_path / "aux.pth"
    source = _WithAux(1000)
    torch.save(source.state_dict(), path)
    target = _WithAux(3)
    with pytest.warns(UserWarning, match=r"1000 classes, the model 3.*aux\.2, fc"):
        load_pretrained(target, path)
    assert torch.equal(target.trunk.weight, source.trunk.weight)
    assert torch.equal(target.aux[0].weight, source.aux[0].weight)

    # a hidden layer of a different width is not a class count: error, with both shapes
    torch.save(_WithAux(1000, hidden=16).state_dict(), path)
    with pytest.raises(ValueError, match=r"trunk\.weight checkpoint \(16, 4\) vs model \(8, 4\)"):
        load_pretrained(_WithAux(1000), path)


def test_mis_shaped_layer_is_an_error_naming_file_key_and_shapes(tmp_path):
    path = tmp_path / "grey.pth"
    torch.save(_lenet(10, in_channels=1).state_dict(), path)
    with pytest.raises(ValueError) as info:
        load_pretrained(_lenet(10, in_channels=3), path)
    message = str(info.value)
    assert str(path) in message
    assert "features.c1.weight checkpoint (6, 1, 5, 5) vs model (6, 3, 5, 5)" in message
    assert "mis-shaped (1)" in message

    # a class-count difference does not excuse another mismatch
    with pytest.raises(ValueError, match=r"features\.c1\.weight.*classifier\.output\.weight"):
        load_pretrained(_lenet(5, in_channels=3), path)


def test_missing_and_unexpected_keys_are_listed_with_shapes(tmp_path):
    state = _lenet().state_dict()
    del state["classifier.f6.bias"]
    state["classifier.extra.weight"] = torch.zeros(2, 3)
    path = tmp_path / "edited.pth"
    torch.save(state, path)
    target = _lenet(seed=1)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(ValueError) as info:
        load_pretrained(target, path)
    message = str(info.value)
    assert re.search(r"missing from the checkpoint \(1\): classifier\.f6\.bias \(84,\)", message)
    assert re.search(r"unexpected in the checkpoint \(1\): classifier\.extra\.weight \(2, 3\)", message)
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())  # nothing half-loaded


def test_batchnorm_counters_are_bookkeeping(tmp_path):
    source = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    source[1].running_mean.uniform_()
    path = tmp_path / "bn.pth"
    torch.save(source.state_dict(), path)
    target = freeze_batchnorm(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))  # no num_batches_tracked
    load_pretrained(target, path)
    assert torch.equal(target[1].running_mean, source[1].running_mean)

    old_style = {k: v for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(old_style, path)
    fresh = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    load_pretrained(fresh, path)
    assert torch.equal(fresh[0].weight, source[0].weight)


def test_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope.pth"))):
        load_pretrained(_lenet(), tmp_path / "nope.pth")

    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ValueError, match=r"notes\.txt: not a PyTorch checkpoint"):
        load_pretrained(_lenet(), text)

    pickled = tmp_path / "object.pkl"  # arbitrary pickles are refused by weights_only=True
    pickled.write_bytes(pickle.dumps(_WithAux(2), protocol=2))
    with pytest.raises(ValueError, match=r"object\.pkl: not a PyTorch checkpoint"):
        load_pretrained(_lenet(), pickled)

    no_state = tmp_path / "metrics.pth"
    torch.save({"epoch": 3, "top1": 0.5}, no_state)
    with pytest.raises(ValueError, match=r"metrics\.pth: no state_dict found.*'epoch', 'top1'"):
        read_state_dict(no_state)


def test_build_backbone_loads_weights_into_the_trunk_and_head(tmp_path):
    source = _lenet(10, seed=0)
    path = tmp_path / "lenet.pth"
    torch.save({"model": source.state_dict()}, path)
    with warnings.catch_warnings():  # a trunk never uses the class layer: no warning about it
        warnings.simplefilter("error")
        backbone = build_backbone("lenet5", weights=str(path), num_classes=4)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = backbone(x)["s4"]
        assert torch.equal(feats, source.features(x))
        assert torch.allclose(backbone.make_box_head()(feats), source.classifier[:4](feats.flatten(1)))


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_every_network_recognises_a_class_count_change(name):
    with torch.device("meta"):  # only names and shapes matter here
        imagenet = build_classifier(name, num_classes=1000).state_dict()
        model = build_classifier(name, num_classes=7)
    with pytest.warns(UserWarning, match=r"1000 classes, the model 7") as record:
        load_state(model, imagenet, source=f"{name}.pth")
    # exactly the layers with 7 outputs are left out (GoogLeNet: its auxiliary classifiers as well)
    named = str(record[0].message).split("class layer(s) ")[1].split(" (")[0].split(", ")
    outputs = {n for n, m in model.named_modules() if getattr(m, "out_features", None) == 7}
    assert set(named) == outputs and named
    load_state(model, model.state_dict())  # same classes: loads silently


def _torchvision_state(name: str) -> dict[str, torch.Tensor]:
    """A torchvision ImageNet file's names and shapes (random, on the meta device: nothing is downloaded)."""
    with torch.device("meta"):
        options = {"aux_logits": True, "init_weights": False} if name == "googlenet" else {}
        return getattr(torchvision.models, name)(weights=None, **options).state_dict()


def test_torchvision_resnet18_into_the_width_16_config_names_the_width_option(tmp_path):
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    with pytest.raises(ValueError) as info:
        build_backbone("resnet18", weights=str(path), width=16)
    lines = str(info.value).splitlines()
    assert 2 <= len(lines) <= 5, lines
    assert lines[0].startswith(f"model.backbone.weights={path}: checkpoint does not fit ResNet")
    assert "mis-shaped (101): conv1.weight checkpoint (64, 3, 7, 7) vs model (16, 3, 7, 7)" in lines[1]
    assert lines[1].endswith("... and 98 more")
    assert lines[-1] == (
        "  likely fix: the model is built with the option width=16 (options: {width: 16} in the config), "
        "the checkpoint with width=64: drop the width option (or set it to 64)"
    )


@pytest.mark.parametrize(
    "torchvision_name, ours, layout",
    [("alexnet", "alexnet", "alexnet_tv"), ("googlenet", "googlenet", "googlenet_bn")],
)
def test_torchvision_layouts_suggest_the_matching_network(torchvision_name, ours, layout):
    state = _torchvision_state(torchvision_name)
    with torch.device("meta"):
        model = build_classifier(ours)
    message = describe_mismatch(f"{torchvision_name}.pth", model, state, alternatives=related_networks(ours))
    lines = message.splitlines()
    assert len(lines) <= 5 and "names differ" in lines[0]
    assert lines[-1].startswith(f"  likely fix: the checkpoint has the layout of '{layout}'")
    with torch.device("meta"):
        assert describe_mismatch("x.pth", build_classifier(layout), state) is None  # and it does fit there


def test_a_missing_weights_file_names_the_config_key(tmp_path):
    missing = tmp_path / "cls" / "model_final.pth"
    with pytest.raises(FileNotFoundError) as info:
        build_backbone("lenet5", weights=str(missing))
    assert str(info.value) == f"model.backbone.weights: checkpoint not found: {missing}"
    with pytest.raises(FileNotFoundError, match=r"^checkpoint not found"):
        load_pretrained(_lenet(), missing)  # no key given: the message is the file's


def test_describe_mismatch_is_none_when_the_state_fits():
    model = _lenet(10)
    assert describe_mismatch("same.pth", model, model.state_dict()) is None
    assert describe_mismatch("classes.pth", _lenet(4), model.state_dict()) is None  # only the class count
