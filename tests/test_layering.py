"""The floors of the tree, checked from the source: every import of every module of rcnn/, backbones/ and
tools/ (module level and inside functions) is parsed with ``ast`` and must

(a) go to the module's own level or a lower one (no upward import);
(b) leave the graph between packages free of cycles (within one level too);
(c) in rcnn/ and backbones/, never reach tools/ or tests/;
(d) sit at the top of the file, unless it is inside a function with a comment on its line or the line above
    that starts ``# optional:`` and says why (a genuinely optional or heavy dependency, loaded on use).

The table below is the only place the layout is written down for the test: a new package is added to its
floor here (a module on no floor is an error).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("rcnn", "backbones", "tools")  # directories whose .py files are parsed
LIBRARY = ("rcnn", "backbones")  # the installed packages: they never import tools/ or tests/
NOT_IMPORTABLE_FROM_LIBRARY = ("tools", "tests", "helpers", "conftest")  # helpers: tests/helpers on the path

# Floors, bottom to top. Each floor is a list of levels, each level a list of packages (a package is a
# dotted prefix: "rcnn.ops" holds rcnn/ops/*; "rcnn.structures" is one file). A module may import from its
# own level and every level below it; packages of one level must not import each other in a cycle.
FLOORS: list[tuple[str, list[list[str]]]] = [
    ("utils", [["rcnn.utils"]]),
    (
        "core",
        [
            # The order inside the core floor, as the code has it: the conventions import nothing of
            # rcnn; ops, data and backbones build on them only; the config (its schema checks backbone
            # names and options against the builders), modeling (ops, structures), proposals (data:
            # image reading) and evaluation (structures) come last.
            ["rcnn.structures"],
            ["rcnn.ops", "rcnn.data", "rcnn.visualization", "backbones"],
            ["rcnn.config", "rcnn.config_schema", "rcnn.modeling", "rcnn.proposals", "rcnn.evaluation"],
        ],
    ),
    ("detectors", [["rcnn.detectors"]]),
    ("engine", [["rcnn.engine"]]),
    ("tasks", [["rcnn.tasks"]]),
    # The quickstart's step runner serves the benchmark sections too (tools/benchmarks/steps.py).
    ("tools", [["tools.quickstart"], ["tools.benchmarks", "tools"]]),
]
# rcnn/__init__.py holds only __version__: importing the bare package is allowed from anywhere.
ROOT_PACKAGE = "rcnn"

OPTIONAL_COMMENT = re.compile(r"#\s*optional:", re.IGNORECASE)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted
    target: str  # the imported project module (or package), dotted
    path: str  # file, relative to the repository root
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _project_files() -> dict[str, Path]:
    files = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            files[_module_name(path)] = path
    return files


FILES = _project_files()
PROJECT_TOPS = set(SCANNED) | set(NOT_IMPORTABLE_FROM_LIBRARY)


def _levels() -> list[tuple[str, int, list[str]]]:
    """(floor name, rank, packages) for every level, rank counted from the bottom."""
    out, rank = [], 0
    for floor, levels in FLOORS:
        for packages in levels:
            out.append((floor, rank, packages))
            rank += 1
    return out


LEVELS = _levels()
PACKAGES = [package for _, _, packages in LEVELS for package in packages]


def package_of(module: str) -> str | None:
    """The package of the floors table that holds ``module`` (the longest matching prefix)."""
    if module == ROOT_PACKAGE:
        return ROOT_PACKAGE
    matches = [p for p in PACKAGES if module == p or module.startswith(p + ".")]
    return max(matches, key=len) if matches else None


def rank_of(package: str) -> int:
    if package == ROOT_PACKAGE:
        return -1
    return next(rank for _, rank, packages in LEVELS if package in packages)


def level_name(package: str) -> str:
    if package == ROOT_PACKAGE:
        return "root"
    floor, rank, _ = next(level for level in LEVELS if package in level[2])
    return f"{floor} floor, level {rank}"


def _resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _imports_of(module: str, path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    rel = str(path.relative_to(ROOT))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = _resolve_from(module, is_package, child)
                # from package import submodule: the dependency is the submodule
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in FILES else base for a in child.names]
            else:
                visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))
                continue
            for target in dict.fromkeys(targets):
                if target.split(".")[0] in PROJECT_TOPS:
                    found.append(Import(module, target, rel, child.lineno, in_function))

    visit(tree, False)
    return found


IMPORTS = {module: _imports_of(module, path) for module, path in FILES.items()}


def _modules_of(package: str) -> list[str]:
    return [m for m in FILES if package_of(m) == package]


def test_the_floors_table_names_existing_packages_once():
    assert len(PACKAGES) == len(set(PACKAGES)), "a package is on two floors"
    missing = [p for p in PACKAGES if not _modules_of(p)]
    assert not missing, f"packages in FLOORS without any module: {missing}"


def test_every_module_is_on_a_floor():
    homeless = [m for m in FILES if package_of(m) is None]
    assert not homeless, (
        f"modules on no floor (add their package to FLOORS in {Path(__file__).name}): {homeless}"
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_no_upward_import(package):
    offenders = []
    for module in _modules_of(package):
        for imp in IMPORTS[module]:
            target = package_of(imp.target)
            if target is None or target == package:
                continue
            if rank_of(target) > rank_of(package):
                offenders.append(
                    f"{imp.path}:{imp.line}: {module} ({level_name(package)}) imports {imp.target} "
                    f"({level_name(target)})"
                )
    assert not offenders, "upward imports:\n" + "\n".join(offenders)


@pytest.mark.parametrize("package", [p for p in PACKAGES if p.split(".")[0] in LIBRARY])
def test_library_does_not_import_tools_or_tests(package):
    offenders = [
        f"{imp.path}:{imp.line}: {module} imports {imp.target}"
        for module in _modules_of(package)
        for imp in IMPORTS[module]
        if imp.target.split(".")[0] in NOT_IMPORTABLE_FROM_LIBRARY
    ]
    assert not offenders, "the library imports tools/ or tests/:\n" + "\n".join(offenders)


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {p: set() for p in PACKAGES}
    for module, imports in IMPORTS.items():
        source = package_of(module)
        for imp in imports:
            target = package_of(imp.target)
            if source and target and target != source and target != ROOT_PACKAGE and source != ROOT_PACKAGE:
                graph[source].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    return components


def test_no_cycle_between_packages():
    cycles = _cycles(_package_graph())
    assert not cycles, f"packages importing each other in a cycle: {cycles}"


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def _marked_optional(path: Path, line: int) -> bool:
    lines = path.read_text().splitlines()
    here = lines[line - 1]
    above = lines[line - 2].strip() if line >= 2 else ""
    return bool(OPTIONAL_COMMENT.search(here)) or (
        above.startswith("#") and bool(OPTIONAL_COMMENT.search(above))
    )


@pytest.mark.parametrize("package", PACKAGES)
def test_project_imports_sit_at_the_top(package):
    offenders = [
        f"{imp.path}:{imp.line}: {imp.target}"
        for module in _modules_of(package)
        for imp in IMPORTS[module]
        if imp.in_function and not _marked_optional(FILES[module], imp.line)
    ]
    assert not offenders, (
        "project imports inside functions (move them to the top, or mark a genuinely optional heavy "
        "dependency with '# optional: why' on the line or the line above):\n" + "\n".join(offenders)
    )


def test_the_parser_sees_imports_inside_functions_and_resolves_relative_ones():
    imports = {(imp.target, imp.in_function) for imp in IMPORTS["rcnn.ops.roi"]}
    assert ("rcnn.ops.roi_align_separable", True) in imports
    assert ("rcnn.ops.roi_align_nhwc", True) in imports
    assert all(
        _marked_optional(FILES["rcnn.ops.roi"], i.line) for i in IMPORTS["rcnn.ops.roi"] if i.in_function
    )
    assert {imp.target for imp in IMPORTS["rcnn.modeling.rpn"]} >= {"rcnn.ops.boxes", "rcnn.modeling.anchors"}
