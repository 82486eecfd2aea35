"""Settings dataclasses from mappings and files, checked: every settings family (train, surrogate,
final) rejects unknown keys and wrong types with a :class:`PnasError` naming the key.

Only the standard library and PyYAML (a Snakemake dependency) are imported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pnas_core.errors import PnasError

T = TypeVar("T")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _as_float(v: Any) -> Any:
    """Ints, and numeric strings such as YAML's ``1e-4`` (which PyYAML reads as a string), as float."""
    if _is_int(v):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def check_types(obj: Any, what: str) -> None:
    """Check every field of the dataclass ``obj`` against its type hint (int, float, bool, str,
    optional); ``what`` names the family in the error (``"train setting epochs must be int"``)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        for t in allowed:
            if (
                (t is type(None) and value is None)
                or (t is bool and isinstance(value, bool))
                or (t is int and _is_int(value))
                or (t is float and isinstance(value, float))
                or (t is str and isinstance(value, str))
            ):
                break
        else:
            want = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise PnasError(f"{what} setting {f.name} must be {want}, got {value!r}")


def check_bounds(
    obj: Any,
    what: str,
    at_least_one: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    positive_or_null: tuple[str, ...] = (),
) -> None:
    """Check numeric ranges of the named fields of ``obj``; errors name the field and its value."""
    for names, ok, rule in (
        (at_least_one, lambda v: v >= 1, "at least 1"),
        (non_negative, lambda v: v >= 0, ">= 0"),
        (positive, lambda v: v > 0, "positive"),
        (positive_or_null, lambda v: v is None or v > 0, "positive or null"),
    ):
        for name in names:
            value = getattr(obj, name)
            if not ok(value):
                raise PnasError(f"{what} setting {name} must be {rule}, got {value}")


def check_choice(what: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise PnasError(f"{what} setting {name} is {value!r}; choose one of {', '.join(choices)}")


def from_mapping(cls: type[T], data: Any, what: str) -> T:
    """``cls(**data)`` after rejecting unknown keys; ints and numeric strings become floats where
    the field is a float."""
    if not isinstance(data, Mapping):
        raise PnasError(f"{what} settings must be a mapping of keys to values, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise PnasError(
            f"unknown {what} setting(s) {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})"
        )
    hints = typing.get_type_hints(cls)
    return cls(**{k: (_as_float(v) if hints[k] in (float, float | None) else v) for k, v in data.items()})


def read_mapping(path: str | os.PathLike[str], what: str) -> Any:
    """The content of a JSON or YAML (by extension) settings file; an empty file is ``{}``."""
    p = Path(path)
    if not p.exists() or p.is_dir():  # exists(): a pipe such as bash's <(...) is fine too
        raise PnasError(f"{what} settings file {p} not found")
    text = p.read_text()
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        raise PnasError(
            f"{what} settings file {p} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}"
        ) from exc
    return {} if data is None else data


def from_file(cls: type[T], path: str | os.PathLike[str], what: str) -> T:
    """Settings of ``cls`` from a JSON or YAML file; errors name the file and the key."""
    data = read_mapping(path, what)
    try:
        return cls.from_dict(data)  # type: ignore[attr-defined]
    except PnasError as exc:
        raise PnasError(f"{what} settings file {path}: {exc}") from exc
