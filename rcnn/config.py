"""Typed configuration: YAML files that map onto dataclasses, with ``section.key=value`` overrides.

    cfg = load_config("configs/faster_rcnn/resnet18_synthetic.yaml", DetectionConfig,
                      ["solver.base_lr=0.02", "model.rpn.anchor_sizes=[16,32,64]"])
    save_config(cfg, "outputs/run/config.yaml")   # the resolved config, to repeat the run exactly

Unknown keys, wrong types and missing files raise :class:`ConfigError` naming the key or path; a misspelt
key gets the closest valid one suggested. The schemas themselves live in :mod:`rcnn.config_schema`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(sorted(valid))}."


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
    if origin is list:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item_hint,) = typing.get_args(hint) or (Any,)
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
    """Build the dataclass ``schema`` from a (possibly partial) nested dict, checking keys and types."""
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
            raise ConfigError(f"unknown config key '{full}'.{_suggest(key, names)}")
        kwargs[key] = _check_value(value, hints[key], full)
    return schema(**kwargs)


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
            raise ConfigError(f"unknown config key '{here}'.{_suggest(key, list(names))}")
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
            raise ConfigError(f"config file not found: {path}")
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
    return from_dict(schema, data)


def save_config(cfg: Any, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML (atomically), so that ``load_config`` gives it back exactly."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(cfg), f, sort_keys=False)
    os.replace(tmp, path)
