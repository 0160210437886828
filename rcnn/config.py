"""Typed configuration: YAML files that map onto dataclasses, with ``section.key=value`` overrides.

    cfg = load_config("configs/faster_rcnn/resnet18_synthetic.yaml", DetectionConfig,
                      ["solver.base_lr=0.02", "model.rpn.anchor_sizes=[16,32,64]"])
    save_config(cfg, "outputs/run/config.yaml")   # the resolved config, to repeat the run exactly

Unknown keys, wrong types, values out of range and missing files raise :class:`ConfigError`, one line
naming the full dotted key or the path; a misspelt key, choice or file gets the closest valid one
suggested. The schemas themselves live in :mod:`rcnn.config_schema`: fixed choices are ``Literal`` types,
value checks sit next to their fields (``base_lr: float = checked(0.01, positive)``), and a section whose
fields constrain each other has a ``check_section()`` method yielding ``(field, problem)``, run once the
overrides are applied.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml

from rcnn.utils.io import atomic_write_text

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


CONFIGS_DIR = Path(__file__).resolve().parents[1] / "configs"


def _suggest(key: str, valid: list[str], section: str = "") -> str:
    """`` Did you mean 'solver.base_lr'?`` (the full dotted key), else the valid keys of ``section``."""
    prefix = f"{section}." if section else ""
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    if close:
        return f" Did you mean '{prefix}{close[0]}'?"
    return f" Valid keys{f' of {section}' if section else ''}: {', '.join(sorted(valid))}."


# ------------------------------------------------------------------------------------------- value checks
# A check takes a field's (type-checked) value and returns what is wrong with it, or None.

Check = Callable[[Any], "str | None"]


def checked(default: Any, *checks: Check) -> Any:
    """A dataclass field with ``default`` (lists are copied per instance) whose value must pass ``checks``."""
    metadata = {"checks": checks}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _all(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def positive(value: Any) -> str | None:
    """Every number (of a list too) > 0."""
    return None if all(v > 0 for v in _all(value)) else "must be > 0"


def non_negative(value: Any) -> str | None:
    return None if all(v >= 0 for v in _all(value)) else "must be >= 0"


def fraction(value: Any) -> str | None:
    """A probability, fraction or IoU threshold: 0 <= value <= 1."""
    return None if all(0 <= v <= 1 for v in _all(value)) else "must be between 0 and 1"


def non_empty(value: Any) -> str | None:
    return None if len(value) else "must not be empty"


def increasing(value: list[Any]) -> str | None:
    return None if all(a < b for a, b in zip(value, value[1:])) else "must be strictly increasing"


_DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def device_name(value: str) -> str | None:
    """``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (a choice a ``Literal`` cannot spell out)."""
    return None if _DEVICE.fullmatch(value) else "expected 'auto', 'cpu', 'cuda' or 'cuda:N'"


def _fmt(value: Any) -> str:
    """A value as messages show it: ``'resnet19'`` (strings quoted), ``600``, ``[600]``, ``{width: 8}``."""
    if isinstance(value, str):
        return repr(value)
    return yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip().removesuffix("...").strip()


def _run_checks(schema: type, cfg: Any, where: str) -> None:
    """The field checks of ``cfg`` (a built ``schema``), then its ``check_section()``."""
    prefix = f"{where}." if where else ""
    for f in dataclasses.fields(schema):
        value = getattr(cfg, f.name)
        for check in f.metadata.get("checks", ()):
            problem = check(value)
            if problem:
                raise ConfigError(f"{prefix}{f.name}={_fmt(value)}: {problem}")


def _run_section_checks(cfg: Any, where: str = "") -> None:
    """Every ``check_section()`` of ``cfg`` and its sub-sections (whole-section constraints)."""
    prefix = f"{where}." if where else ""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            _run_section_checks(value, prefix + f.name)
    check_section: Callable[[], Iterator[tuple[str, str]]] | None = getattr(cfg, "check_section", None)
    for name, problem in check_section() if check_section else ():
        raise ConfigError(f"{prefix}{name}={_fmt(getattr(cfg, name))}: {problem}")


def _check_value(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against the type hint ``hint`` and return it (ints are accepted for floats)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(hint):
            try:
                return _check_value(value, arg, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {value!r} does not fit {hint}")
    if hint is type(None):
        if value is not None:
            raise ConfigError(f"{where}: expected null, got {value!r}")
        return None
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value in choices and type(value) in {type(c) for c in choices}:
            return value
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.5)
        hint_text = f" Did you mean '{close[0]}'?" if close else ""
        listed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{where}={_fmt(value)}: expected one of {listed}.{hint_text}")
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        (item_hint,) = typing.get_args(hint) or (Any,)
        if not isinstance(value, list):
            try:
                _check_value(value, item_hint, where)
                hint_text = f"; did you mean [{_fmt(value)}]?"
            except ConfigError:
                hint_text = ""
            raise ConfigError(
                f"{where}={_fmt(value)}: expected a list, got {type(value).__name__}{hint_text}"
            )
        return [_check_value(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {type(value).__name__} {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {type(value).__name__} {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    raise ConfigError(f"{where}: unsupported type {hint}")


def from_dict(schema: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build the dataclass ``schema`` from a (possibly partial) nested dict, checking keys, types and the
    fields' value checks (not ``check_section()``: see :func:`check_config`)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__} {data!r}")
    hints = typing.get_type_hints(schema)
    names = [f.name for f in dataclasses.fields(schema)]
    kwargs = {}
    for key, value in data.items():
        full = f"{where}.{key}" if where else key
        if key not in names:
            raise ConfigError(f"unknown config key '{full}'.{_suggest(key, names, where)}")
        kwargs[key] = _check_value(value, hints[key], full)
    cfg = schema(**kwargs)
    _run_checks(schema, cfg, where)
    return cfg


def check_config(cfg: Any) -> Any:
    """Run the whole-section checks (``check_section()``, e.g. ``solver.steps`` below ``solver.max_iter``)
    of a built config and return it; :func:`load_config` does this after applying the overrides."""
    _run_section_checks(cfg)
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain nested dicts and lists (what is saved as YAML)."""
    return dataclasses.asdict(cfg)


def _set_path(data: dict[str, Any], schema: type, path: str, value: Any) -> None:
    keys = path.split(".")
    node, node_schema = data, schema
    for i, key in enumerate(keys):
        names = {f.name: f for f in dataclasses.fields(node_schema)}
        here = ".".join(keys[: i + 1])
        if key not in names:
            raise ConfigError(f"unknown config key '{here}'.{_suggest(key, list(names), '.'.join(keys[:i]))}")
        hint = typing.get_type_hints(node_schema)[key]
        if i == len(keys) - 1:
            node[key] = value
            return
        if not dataclasses.is_dataclass(hint):
            raise ConfigError(f"config key '{here}' is a value, not a section: cannot set '{path}'")
        node = node.setdefault(key, {})
        if node is None:
            node = data[key] = {}
        node_schema = hint


def parse_overrides(overrides: list[str]) -> list[tuple[str, Any]]:
    """``["solver.base_lr=0.02", "model.rpn.anchor_sizes=[16,32]"]`` -> ``[(path, parsed value), ...]``.

    Values are parsed as YAML, so numbers, booleans and lists come out typed; ``key=`` gives ``""``.
    """
    parsed = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form section.key=value")
        path, text = item.split("=", 1)
        path = path.strip()
        if not path:
            raise ConfigError(f"override '{item}' has no key before '='")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override '{item}': value is not valid YAML ({e})") from None
        parsed.append((path, value))
    return parsed


def load_config(path: str | os.PathLike | None, schema: type[T], overrides: list[str] | None = None) -> T:
    """Read ``path`` (YAML; None for the schema's defaults), apply ``overrides`` and build ``schema``."""
    data: dict[str, Any] = {}
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ConfigError(f"config file not found: {path}.{_suggest_file(path)}")
        with open(path, encoding="utf-8") as f:
            try:
                loaded = yaml.safe_load(f)
            except yaml.YAMLError as e:
                raise ConfigError(f"{path}: not valid YAML ({e})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        data = loaded or {}
    # Check the file alone first so errors can name it.
    try:
        from_dict(schema, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path else str(e)) from None
    for key, value in parse_overrides(overrides or []):
        _set_path(data, schema, key, value)
    return check_config(from_dict(schema, data))


def _suggest_file(path: str) -> str:
    """`` Did you mean 'configs/faster_rcnn/synthetic_resnet18.yaml'?`` (the closest file under configs/:
    the same words in another order, else the closest path, else the closest file name)."""
    if not CONFIGS_DIR.is_dir():
        return ""
    files = sorted(p.relative_to(CONFIGS_DIR.parent).as_posix() for p in CONFIGS_DIR.rglob("*.yaml"))
    wanted = Path(path).as_posix()
    wanted = wanted[wanted.find("configs/") :] if "configs/" in wanted else wanted

    def words(name: str) -> list[str]:
        return sorted(Path(name).stem.split("_"))

    close = [f for f in files if Path(f).parent == Path(wanted).parent and words(f) == words(wanted)]
    close = close or difflib.get_close_matches(wanted, files, n=1, cutoff=0.6)
    if not close:  # the file name alone: "resnet18_synthetic.yaml" -> ".../synthetic_resnet18.yaml"
        by_name = {}
        for f in files:
            by_name.setdefault(Path(f).name, f)
        names = difflib.get_close_matches(Path(wanted).name, list(by_name), n=1, cutoff=0.6)
        close = [by_name[names[0]]] if names else []
    return f" Did you mean '{close[0]}'?" if close else ""


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML (atomically), so that ``load_config`` gives it back exactly."""
    atomic_write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False), path)
