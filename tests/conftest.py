"""Fixtures shared by every test directory.

The layout of tests/ mirrors the tree (tests/ops for rcnn/ops, tests/tools for tools/, ...); shared code
lives in the package ``tests/helpers`` and is imported as ``helpers.X`` (pyproject's ``pythonpath`` puts
tests/ and the repository root on the path, so ``tools.benchmarks`` imports too).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType

# One intra-op thread per test process, and for the tools the tests start as subprocesses: with two workers
# (pyproject: -n 2) on two cores, more threads only oversubscribe the cores, and a Faster R-CNN training
# step slows many times over when its threads wait for each other.
os.environ["OMP_NUM_THREADS"] = "1"

import pytest  # noqa: E402 - after the thread setting above, which the imports below read
import torch  # noqa: E402
from helpers.tools import load_tool as _load_tool  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def load_tool() -> Callable[[str], ModuleType]:
    """``load_tool(name)`` imports ``tools/<name>.py`` as a module (see :mod:`helpers.tools`)."""
    return _load_tool


# The longest files (a shortened main job, the quick svd and generations sections, the subprocess-heavy tool
# tests) start first, so that with two workers (pyproject: -n 2 --dist loadfile) none of them is left alone
# at the end of the run.
LONGEST_FIRST = (
    "tests/tools/test_quickstart.py",
    "tests/benchmark/test_svd_benchmark.py",
    "tests/benchmark/test_generations_benchmark.py",
    "tests/tools/test_resume_with_augmentation.py",
    "tests/tools/test_user_errors.py",
    "tests/tools/test_no_overwrite.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the rest keeps its order
