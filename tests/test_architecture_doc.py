"""docs/architecture.md lists every module of rcnn/, backbones/ and tools/, and names no file that is gone.

The module list is the lines of the form ``- `path/to/module.py` — purpose``; any other ``.py`` path the
document quotes in backticks must exist too.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("rcnn", "backbones", "tools")

ENTRY = re.compile(r"^- `(?P<path>[\w./]+\.py)` — (?P<purpose>.*)$")
QUOTED_PATH = re.compile(r"`(?P<path>[\w.]+(?:/[\w.]+)+\.py)`")


def _doc_lines() -> list[str]:
    return DOC.read_text(encoding="utf-8").splitlines()


def _entries() -> list[tuple[str, str]]:
    return [(m["path"], m["purpose"].strip()) for line in _doc_lines() if (m := ENTRY.match(line))]


def _modules() -> set[str]:
    return {str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")}


def test_every_module_is_in_the_doc():
    listed = {path for path, _ in _entries()}
    missing = sorted(_modules() - listed)
    assert not missing, f"modules missing from {DOC.name} (add a line '- `path` — purpose'): {missing}"


def test_every_listed_module_exists():
    gone = sorted({path for path, _ in _entries()} - _modules())
    assert not gone, f"{DOC.name} lists modules that do not exist: {gone}"


def test_each_module_is_listed_once_with_a_purpose():
    paths = [path for path, _ in _entries()]
    assert len(paths) == len(set(paths)), sorted({p for p in paths if paths.count(p) > 1})
    assert all(purpose for _, purpose in _entries())


def test_quoted_paths_exist():
    quoted = {m["path"] for line in _doc_lines() for m in QUOTED_PATH.finditer(line)}
    gone = sorted(p for p in quoted if not (ROOT / p).exists())
    assert not gone, f"{DOC.name} quotes files that do not exist: {gone}"


def test_the_entry_pattern_reads_the_documented_format():
    assert ENTRY.match("- `rcnn/ops/roi.py` — RoIPool / RoIAlign")["path"] == "rcnn/ops/roi.py"
    assert ENTRY.match("`rcnn/ops/roi.py` — RoIPool") is None
    assert {m["path"] for m in QUOTED_PATH.finditer("see `tests/test_layering.py` and `x.py`")} == {
        "tests/test_layering.py"
    }
