"""Typed configuration: dataclasses loaded from YAML, overridden by ``key=value`` strings, validated at load.

A config is a (possibly nested) dataclass. Fields declare their allowed values with :func:`param`::

    @dataclass
    class Optim:
        lr: float = param(1e-3, gt=0, help="peak learning rate")
        schedule: str = param("cosine", choices=("cosine", "constant"))

``load_config(Optim, "optim.yaml", ["lr=3e-4"])`` reads the file, applies the overrides, converts every
value to its declared type and checks its range; any unknown key, wrong type or out-of-range value raises
:class:`ConfigError` naming the dotted field and what is allowed, before any work starts.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from jepalab.rundir import atomic_write_text

__all__ = ["ConfigError", "config_to_dict", "load_config", "param", "parse_overrides", "save_config", "sections"]

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type, or out of its allowed range."""


def param(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[Any, ...] | None = None,
    help: str = "",
) -> Any:
    """A dataclass field with range/choice metadata; mutable defaults are copied per instance."""
    metadata = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "help": help}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    if dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: dataclasses.replace(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def sections(types: Callable[[], dict[str, type]], help: str = "") -> Any:
    """A ``dict[str, Any]`` field of named sections whose names and dataclasses come from ``types()`` (a registry,
    asked at use): in YAML each section sits at the top level beside the fixed fields, a missing one takes its
    defaults, an unknown one is an error."""
    return dataclasses.field(default_factory=lambda: {name: cls() for name, cls in types().items()},
                             metadata={"sections": types, "help": help})


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["a.b=1", "c=[1, 2]"]`` → nested dict; values are parsed as YAML scalars/lists."""
    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value (dotted keys for sections)")
        key, raw = item.split("=", 1)
        if not key.strip():
            raise ConfigError(f"override {item!r} has an empty key")
        value = yaml.safe_load(raw) if raw.strip() else ""
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} sets a field inside {part!r}, which is not a section")
        node[parts[-1]] = value
    return nested


def merge_dicts(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, recursively for nested mappings (neither is modified)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_dicts(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Build ``cls`` from an optional YAML file plus ``key=value`` overrides, validating every field."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise ConfigError(f"config file {path} is not valid YAML: {error}") from error
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of field: value at the top level")
        data = loaded or {}
    data = merge_dicts(data, parse_overrides(overrides))
    return from_dict(cls, data)


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Construct and validate dataclass ``cls`` from a plain dict (unknown keys are errors)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping; got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    open_field = next((f.name for f in fields.values() if "sections" in f.metadata), None)
    section_types: dict[str, type] = fields[open_field].metadata["sections"]() if open_field else {}
    allowed = (set(fields) - {open_field}) | set(section_types)
    unknown = sorted(set(data) - allowed)
    if unknown:
        where = f" in {prefix.rstrip('.')}" if prefix else ""
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}'; allowed keys{where}: {', '.join(sorted(allowed))}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in section_types:
            kwargs[name] = _convert(hints[name], value, f"{prefix}{name}", fields[name].metadata)
    if open_field:
        kwargs[open_field] = {name: _convert(kind, data[name], f"{prefix}{name}", {}) if name in data else kind()
                              for name, kind in section_types.items()}
    try:
        instance = cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {error}") from error
    for name, field in fields.items():
        if name not in kwargs and not dataclasses.is_dataclass(hints[name]):
            _check_range(getattr(instance, name), f"{prefix}{name}", field.metadata)
    return instance


def _convert(hint: Any, value: Any, name: str, metadata: typing.Mapping[str, Any]) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for option in inner:
            try:
                return _convert(option, value, name, metadata)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value):
            return value
        return from_dict(hint, value, prefix=f"{name}.")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{name} must be one of {list(args)}; got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list; got {value!r}")
        item_type = args[0] if args else Any
        items = [_convert(item_type, v, f"{name}[{i}]", {}) for i, v in enumerate(value)]
        converted: Any = tuple(items) if origin is tuple else items
    elif hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false; got {value!r}")
        converted = value
    elif hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{name} must be an integer; got {value!r}")
        converted = int(value)
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                converted = float(value)  # YAML reads "1e-3" (no dot) as a string
            except (TypeError, ValueError):
                raise ConfigError(f"{name} must be a number; got {value!r}") from None
        else:
            converted = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string; got {value!r}")
        converted = value
    elif hint is Any:
        converted = value
    else:
        raise ConfigError(f"{name}: unsupported config type {hint!r}")
    _check_range(converted, name, metadata)
    return converted


def _check_range(value: Any, name: str, metadata: typing.Mapping[str, Any]) -> None:
    if value is None:
        return
    choices = metadata.get("choices")
    items = value if isinstance(value, (list, tuple)) else (value,)  # a list field: each item from the choices
    if choices is not None and any(item not in choices for item in items):
        raise ConfigError(f"{name} must be one of {list(choices)}; got {value!r}")
    bounds = [
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ]
    for key, ok, symbol in bounds:
        bound = metadata.get(key)
        if bound is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, (int, float)) and not ok(item, bound):
                raise ConfigError(f"{name} must be {symbol} {bound}{_allowed(metadata)}; got {item!r}")


def _allowed(metadata: typing.Mapping[str, Any]) -> str:
    parts = [f"{sym} {metadata[k]}" for k, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))]
    present = [p for p, k in zip(parts, ("ge", "gt", "le", "lt")) if metadata.get(k) is not None]
    return f" (allowed range: {' and '.join(present)})" if len(present) > 1 else ""


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (tuples become lists, named sections at the top level), ready
    for YAML/JSON."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return config_to_dict(value)
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return copy.deepcopy(value)

    result: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = plain(getattr(config, f.name))
        if "sections" in f.metadata:  # named sections sit at the top level
            result.update(value)
        else:
            result[f.name] = value
    return result


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    atomic_write_text(Path(path), yaml.safe_dump(config_to_dict(config), sort_keys=False))
