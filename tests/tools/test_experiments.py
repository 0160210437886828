"""tools/experiments.py: each experiment's quick variant writes its pictures and tables; --all writes the
page; bad arguments and checkpoints are user errors."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
import torch
from helpers.tools import load_tool
from PIL import Image

import backbones
from rcnn.utils.io import atomic_save
from tools.lineage.common import TensorSet
from tools.lineage.degradation import NETWORKS, QUICK, train_networks


@pytest.fixture(scope="module")
def tool():
    return load_tool("experiments")


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def table_rows(markdown: str) -> list[str]:
    """The first column of every body row of the markdown tables."""
    return [m.group(1).strip() for m in re.finditer(r"^\| ([^|]+) \|(?!---)", markdown, re.M)][1:]


def run(tool, capsys, name, tmp_path, *extra):
    assert (
        tool.main([name, "--quick", "--output", str(tmp_path), "--work-dir", str(tmp_path / "work"), *extra])
        == 0
    )
    return capsys.readouterr().out


def test_degradation(tool, capsys, tmp_path):
    out = run(tool, capsys, "degradation", tmp_path)
    assert png_size(tmp_path / "degradation.png") == (700, 450)
    rows = [r for r in table_rows(out) if r in ("plain20", "plain56", "resnet20", "resnet56")]
    assert rows == ["plain20", "plain56", "resnet20", "resnet56"]
    assert out.count("training error:") == 2  # both findings stated, shown or not
    assert "over the first 2 iterations" in out  # the quick set-up's warm-up, stated as a deviation


def test_degradation_networks_train_the_same_two_at_a_time_as_one_after_the_other(tool):
    """The full set-up trains two networks at once in spawned processes: each network's weights and
    batches come from the seed alone, so its error history equals the one of a run in this process."""
    g = torch.Generator().manual_seed(0)
    classes = ["a", "b", "c"]

    def tensor_set(n: int) -> TensorSet:
        images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
        return TensorSet(images, torch.arange(n) % 3, classes)

    train, test = tensor_set(24), tensor_set(9)
    threads = torch.get_num_threads()
    one_by_one = train_networks(dataclasses.replace(QUICK, workers=1), train, test)
    assert torch.get_num_threads() == threads  # the in-process path gives the caller its threads back
    two_at_once = train_networks(dataclasses.replace(QUICK, workers=2), train, test)
    assert list(two_at_once) == list(NETWORKS)
    for name in NETWORKS:
        assert two_at_once[name][0] == one_by_one[name][0], name
        assert len(one_by_one[name][0]) == QUICK.iterations // QUICK.eval_period


def test_lenet5(tool, capsys, tmp_path):
    out = run(tool, capsys, "lenet5", tmp_path)
    assert "paper: scaled tanh + average subsampling" in out and "ReLU + max pooling" in out
    errors = [float(x) for x in re.findall(r"\| ([\d.]+) \| 0\.95 \|", out)]
    assert len(errors) == 2 and all(0 <= e <= 100 for e in errors)
    width, height = png_size(tmp_path / "lenet5_errors.png")
    assert width == 1200 and height >= 115  # 12 panels of 1 inch per row


def test_filters_of_a_checkpoint(tool, capsys, tmp_path):
    model = backbones.build_classifier("alexnet", 5)
    ckpt = tmp_path / "model_final.pth"
    atomic_save({"model": model.state_dict(), "name": "alexnet", "num_classes": 5, "options": {}}, ckpt)
    out = run(tool, capsys, "filters", tmp_path, "--checkpoint", str(ckpt))
    assert "96 kernels of 3x11x11, 2 block(s) of 48 + 48" in out
    width, height = png_size(tmp_path / "filters.png")
    assert width > 150 and height > 50


def test_filter_blocks_are_normalised_kernels():
    from tools.lineage.filters import kernel_blocks

    model = backbones.build_classifier("alexnet_tv", 3)
    (block,) = kernel_blocks(model)  # one column: no groups
    assert block.shape == (64, 11, 11, 3)
    assert np.allclose(block.reshape(64, -1).min(1), 0) and np.allclose(block.reshape(64, -1).max(1), 1)


def test_filters_errors(tool, capsys, tmp_path):
    assert tool.main(["filters", "--checkpoint", str(tmp_path / "nothing.pth")]) == 2
    assert "error: checkpoint not found" in capsys.readouterr().err
    torch.save({"weights": torch.zeros(1)}, tmp_path / "bad.pth")
    assert tool.main(["filters", "--checkpoint", str(tmp_path / "bad.pth")]) == 2
    assert "not a classifier checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["lenet5", "--checkpoint", "x.pth"])


def test_multicrop(tool, capsys, tmp_path):
    out = run(tool, capsys, "multicrop", tmp_path)
    assert [r for r in table_rows(out) if r.isdigit()] == ["1", "10", "144"]


def test_crop_counts():
    from tools.lineage.multicrop import SCHEMES

    image = torch.randint(0, 255, (3, 64, 80), dtype=torch.uint8)  # not square: 3 distinct squares
    for count, scheme in SCHEMES.items():
        crops = scheme(image, 72, 64)
        assert len(crops) == count and all(c.shape == (3, 64, 64) for c in crops)
    crops = SCHEMES[144](image, 72, 64)
    assert len({c.float().sum().item() for c in crops[:72]}) > 40  # scales x squares x crops differ


def test_complexity(tool, capsys, tmp_path):
    out = run(tool, capsys, "complexity", tmp_path)
    assert [r for r in table_rows(out)] == ["lenet5", "alexnet", "resnet20", "resnet18"]
    assert "| alexnet | 3x227x227 | 60.97 | 724.4 |" in out  # backbones.summary at the paper's size
    assert png_size(tmp_path / "complexity.png") == (1300, 500)


def test_all_writes_the_page(tool, tmp_path, monkeypatch):
    from tools.lineage.common import Section

    def fake(name):
        def run(output_dir, quick=False, work_dir=None):
            (tmp_path / "docs" / "experiments").mkdir(parents=True, exist_ok=True)
            return Section(name, f"Title {name}", f"text of {name}\n\n![x]({name}.png)")

        return run

    monkeypatch.setattr(tool, "EXPERIMENTS", {n: fake(n) for n in tool.EXPERIMENTS})
    assert tool.main(["--all", "--quick", "--output", str(tmp_path / "docs" / "experiments")]) == 0
    page = (tmp_path / "docs" / "experiments.md").read_text()
    for name in ("complexity", "filters", "lenet5", "multicrop", "degradation"):
        assert f"## Title {name}" in page and f"](experiments/{name}.png)" in page
        assert f"Command: `python tools/experiments.py {name} --quick`" in page


def test_write_docs_replaces_one_section(tool, tmp_path, monkeypatch):
    from tools.lineage.common import Section

    def fake(name, text):
        def run(output_dir, quick=False, work_dir=None, **kwargs):
            return Section(name, f"Title {name}", f"{text} of {name}\n\n![x]({name}.png)")

        return run

    out = tmp_path / "docs" / "experiments"
    monkeypatch.setattr(tool, "EXPERIMENTS", {n: fake(n, "old") for n in tool.EXPERIMENTS})
    assert tool.main(["--all", "--quick", "--output", str(out)]) == 0
    before = (tmp_path / "docs" / "experiments.md").read_text()
    for name in ("multicrop", "degradation"):  # one in the middle, the last
        monkeypatch.setitem(tool.EXPERIMENTS, name, fake(name, "new"))
        assert tool.main([name, "--quick", "--write-docs", "--output", str(out)]) == 0
    after = (tmp_path / "docs" / "experiments.md").read_text()
    expected = before.replace("old of multicrop", "new of multicrop").replace(
        "old of degradation", "new of degradation"
    )
    assert after == expected and after != before


def test_replace_section_appends_a_missing_one(tool):
    page = "# P\n\n## A\n\na\n"
    assert tool.replace_section(page, "B", "## B\n\nb") == "# P\n\n## A\n\na\n\n## B\n\nb\n"
    assert tool.replace_section(page, "A", "## A\n\nz") == "# P\n\n## A\n\nz\n"


def test_setup_overrides(tool, capsys, tmp_path, monkeypatch):
    from tools.lineage.common import Section
    from tools.lineage.degradation import parse_overrides

    seen = {}

    def fake(output_dir, quick=False, work_dir=None, overrides=None):
        seen.update(overrides)
        return Section("degradation", "Title", "text")

    monkeypatch.setitem(tool.EXPERIMENTS, "degradation", fake)
    out = tmp_path / "docs" / "experiments"
    argv = [
        "degradation",
        "--setup",
        "seed=1",
        "--setup",
        "iterations=9",
        "--write-docs",
        "--output",
        str(out),
    ]
    assert tool.main(argv) == 0
    assert seen == {"seed": 1, "iterations": 9}
    page = (tmp_path / "docs" / "experiments.md").read_text()  # a new page: this section alone
    assert "Command: `python tools/experiments.py degradation --setup seed=1 --setup iterations=9`" in page
    assert "Not measured in this run" in page and "## Title" in page

    assert parse_overrides(["iterations=480", "zero_init_residual=true", "warmup_factor=0.5"]) == {
        "iterations": 480,
        "zero_init_residual": True,
        "warmup_factor": 0.5,
    }
    for bad in (["depth=3"], ["iterations=many"], ["zero_init_residual=maybe"], ["iterations"]):
        with pytest.raises(SystemExit) as e:
            tool.main(["degradation", *[f"--setup={b}" for b in bad]])
        assert e.value.code == 2 and "--setup:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["lenet5", "--setup", "iterations=3"])
    with pytest.raises(SystemExit):
        tool.main(["--all", "--write-docs"])


def test_mnist_export_trains_with_train_classifier(tmp_path):
    assert load_tool("make_synthetic").main(["--task", "mnist", "--output", str(tmp_path)]) == 0
    root = tmp_path / "mnist"
    counts = {split: len(list((root / split).glob("*/*.png"))) for split in ("train", "val")}
    assert counts == {"train": 4000, "val": 1000}
    with Image.open(next((root / "val" / "7").glob("*.png"))) as image:
        assert image.size == (32, 32) and image.mode == "L"
    out = tmp_path / "run"
    config = "configs/classification/mnist_lenet5.yaml"
    overrides = [f"data.root={root}", f"output.dir={out}", "solver.epochs=1", "data.num_workers=0"]
    tool = load_tool("train_classifier")
    assert tool.main(["--config", str(tool.ROOT + "/" + config), "--no-progress", *overrides]) == 0
    assert (out / "model_final.pth").is_file()
