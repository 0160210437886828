"""Fixtures shared by every test directory.

The layout of tests/ mirrors the tree (tests/ops for rcnn/ops, tests/tools for tools/, ...); shared code
lives in the package ``tests/helpers`` and is imported as ``helpers.X`` (pyproject's ``pythonpath`` puts
tests/ and the repository root on the path, so ``tools.benchmarks`` imports too).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
from helpers.tools import load_tool as _load_tool


@pytest.fixture(scope="session")
def load_tool() -> Callable[[str], ModuleType]:
    """``load_tool(name)`` imports ``tools/<name>.py`` as a module (see :mod:`helpers.tools`)."""
    return _load_tool
