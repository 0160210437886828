"""The steps of the benchmark sections that train (generations, svd): the repository's commands run one by
one from the repository root, each printed before it runs (as ``tools/quickstart.py`` runs its own, with
:func:`tools.quickstart.run_step`), timed, and recorded with their folders written as placeholders; and the
checks made before anything long runs."""

from __future__ import annotations

import os
import shlex
import sys

from rcnn.config import load_config
from rcnn.config_schema import ClassificationConfig, DetectionConfig
from tools.quickstart import ROOT, run_step, synthetic_data_args


class Steps:
    """Runs ``python ARGS`` from the repository root, printing each command first (to stderr: the section's
    markdown goes to stdout); keeps the commands and their wall-clock seconds, with the folders of
    ``names`` (path -> placeholder, e.g. the work folder as ``WORK``) written as their placeholders. A
    failed command raises :class:`tools.quickstart.StepFailed` (a ``RuntimeError``)."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.commands: list[tuple[str, str, float]] = []  # (title, shown command, seconds)

    def run(self, title: str, args: list[str]) -> float:
        seconds = run_step(title, args, log=sys.stderr)
        self.commands.append((title, self.shown(args), seconds))
        return seconds

    def shown(self, args: list[str]) -> str:
        """``python ARGS`` with the named folders written as their placeholders."""
        shown = shlex.join(["python", *args])
        for path, name in sorted(self.names.items(), key=lambda item: -len(item[0])):  # longest first
            shown = shown.replace(path, name)
        return shown


def data_overrides(data: str) -> list[str]:
    """The detector config's overrides that point ``data.*`` at the synthetic detection set in ``data``."""
    det = os.path.join(data, "detection")
    return [
        f"data.train_images={det}/train", f"data.train_annotations={det}/train.json",
        f"data.val_images={det}/val", f"data.val_annotations={det}/val.json",
    ]  # fmt: skip


def check_fresh_work_folder(work: str, outputs: list[str]) -> None:
    """Refuse a work folder that already holds any of ``outputs``: the tools would resume from them, and the
    times would not be of whole runs."""
    done = [name for name in outputs if os.path.exists(os.path.join(work, name))]
    if done:
        raise RuntimeError(f"work folder {work} already holds {', '.join(done)}: use a new or empty folder")


def generate_data(steps: Steps, data_dir: str, sizes: dict[str, int]) -> None:
    """The synthetic detection and classification sets of ``sizes`` (keys ``num_train``, ``num_val``,
    ``image_size``, ``cls_per_class``) in ``data_dir``, as the quick start's step "generate the synthetic
    data" (``tools/make_synthetic.py``, seed 0)."""
    steps.run("generate the synthetic data", synthetic_data_args(data_dir, seed=0, **sizes))


def check_overrides(config: str, overrides: list[str], classification: bool = False) -> None:
    """Load ``config`` (a path from the repository root) with ``overrides`` (raises
    :class:`rcnn.config.ConfigError` naming a bad key) before anything long runs."""
    load_config(
        os.path.join(ROOT, config), ClassificationConfig if classification else DetectionConfig, overrides
    )
