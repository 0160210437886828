"""The command-line scripts of ``tools/`` as modules, for tests that call their ``main(argv)``.

The scripts are files, not a package: ``load_tool("train_detector")`` executes ``tools/train_detector.py``
afresh as the module ``tool_train_detector`` and registers it in ``sys.modules`` (a process pool pickles a
script's functions by module name).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools"


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` imported as the module ``tool_<name>``."""
    path = TOOLS_DIR / f"{name}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no tool {name!r}: {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"tool_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
