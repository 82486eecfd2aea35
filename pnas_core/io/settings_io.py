"""Settings dataclasses from mappings and files, checked: every settings family (train, surrogate,
final) rejects unknown keys and wrong types with a :class:`PnasError` naming the key.

Only the standard library and PyYAML (a Snakemake dependency) are imported.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from pnas_core.errors import PnasError, shown
from pnas_core.io.text_io import loads_json, read_text
from pnas_core.limits import (
    MAX_IMAGE_SIZE,
    MAX_SEED,
    MAX_TEXT_FILE_BYTES,
    size_problem,
)

T = TypeVar("T")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _as_float(v: Any) -> Any:
    """Ints, and numeric strings such as YAML's ``1e-4`` (which PyYAML reads as a string), as float;
    anything else (an int beyond float's range included) unchanged, for the type check to refuse."""
    if _is_int(v) or isinstance(v, str):
        try:
            return float(v)
        except (ValueError, OverflowError):
            return v
    return v


def _is_finite_float(v: Any) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def check_types(obj: Any, what: str) -> None:
    """Check every field of the dataclass ``obj`` against its type hint (int, float, bool, str,
    optional, mapping); ``what`` names the family in the error (``"train setting epochs must be
    int"``). Floats must be finite: NaN and infinity are refused where they enter."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        for t in allowed:
            if (
                (t is type(None) and value is None)
                or (t is bool and isinstance(value, bool))
                or (t is int and _is_int(value))
                or (t is float and _is_finite_float(value))
                or (t is str and isinstance(value, str))
                or (typing.get_origin(t) is Mapping and isinstance(value, Mapping))
            ):
                break
        else:
            if float in allowed and isinstance(value, float):
                raise PnasError(f"{what} setting {f.name} must be a finite number, got {value!r}")
            want = " or ".join(_type_name(t) for t in allowed)
            raise PnasError(f"{what} setting {f.name} must be {want}, got {shown(value)}")


def _type_name(t: Any) -> str:
    if t is type(None):
        return "null"
    return "a mapping" if typing.get_origin(t) is Mapping else t.__name__


@dataclasses.dataclass(frozen=True)
class Rules:
    """The value rules of one settings dataclass, declared once: ``__post_init__`` applies them
    (:func:`check_rules`) and :mod:`pnas_core.cli.settings_schema` writes them into its JSON schema.

    Each mapping takes field names to a bound (JSON Schema's ``minimum``, ``exclusiveMinimum``,
    ``maximum``, ``exclusiveMaximum``); a None value passes where the field's type allows None.
    ``choices`` lists the allowed strings; ``patterns`` gives a full-match regex (ASCII classes such
    as ``[0-9]``, not ``\\d``, which also matches other scripts' digits) and a hint.
    """

    minimum: Mapping[str, float] = dataclasses.field(default_factory=dict)
    exclusive_minimum: Mapping[str, float] = dataclasses.field(default_factory=dict)
    maximum: Mapping[str, float] = dataclasses.field(default_factory=dict)
    exclusive_maximum: Mapping[str, float] = dataclasses.field(default_factory=dict)
    choices: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    patterns: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)


DATASET_RULES = Rules(
    minimum={"image_size": 4, "split_seed": 0},
    maximum={"image_size": MAX_IMAGE_SIZE, "split_seed": MAX_SEED},
    exclusive_minimum={"val_fraction": 0, "test_fraction": 0},
    exclusive_maximum={"val_fraction": 1, "test_fraction": 1},
)
"""Bounds of the :class:`pnas_core.training.data.DatasetSettings` fields (the dataset name's choices are
added by each settings family)."""

DEVICE_PATTERN = (r"auto|cpu|cuda|cuda:[0-9]{1,3}", "choose auto, cpu, cuda or cuda:<index>")


def anchored(pattern: str) -> str:
    """``pattern`` matched against the whole value by ``re.search``: the form the settings checks use
    and the JSON schemas carry (jsonschema applies ``re.search``). It ends with ``(?![\\s\\S])``, not
    ``$``, which also matches before a trailing newline; both are valid JSON Schema (ECMA-262) regexes."""
    return f"^(?:{pattern})(?![\\s\\S])"


def merge_rules(*rules: Rules) -> Rules:
    """One :class:`Rules` holding every rule of ``rules`` (later ones win per field and kind)."""
    return Rules(
        **{
            f.name: {k: v for r in rules for k, v in getattr(r, f.name).items()}
            for f in dataclasses.fields(Rules)
        }
    )


def _bound_message(kind: str, bound: float) -> str:
    if kind == "minimum":
        return "at least 1" if bound == 1 else f">= {bound:g}"
    if kind == "exclusive_minimum":
        return "positive" if bound == 0 else f"above {bound:g}"
    return f"at most {bound:g}" if kind == "maximum" else f"below {bound:g}"


_BOUND_OK = {
    "minimum": lambda v, b: v >= b,
    "exclusive_minimum": lambda v, b: v > b,
    "maximum": lambda v, b: v <= b,
    "exclusive_maximum": lambda v, b: v < b,
}


def check_bounds(what: str, name: str, value: Any, rules: Rules, prefix: str = "") -> None:
    """Raise unless ``value`` of the field ``name`` keeps the bounds ``rules`` give it (None passes);
    the error names ``{prefix}{name}``."""
    for kind, ok in _BOUND_OK.items():
        bound = getattr(rules, kind).get(name)
        if bound is not None and value is not None and not ok(value, bound):
            raise PnasError(
                f"{what} setting {prefix}{name} must be {_bound_message(kind, bound)}, got {value}"
            )


def check_rules(obj: Any, what: str, rules: Rules) -> None:
    """Check the types (:func:`check_types`) and the :class:`Rules` of the dataclass ``obj``; every
    error names the family, the field and its value."""
    check_types(obj, what)
    for name, choices in rules.choices.items():
        check_choice(what, name, getattr(obj, name), choices)
    for name, (pattern, hint) in rules.patterns.items():
        value = getattr(obj, name)
        if not re.search(anchored(pattern), value):
            raise PnasError(f"{what} setting {name} is {shown(value)}; {hint}")
    for f in dataclasses.fields(obj):
        check_bounds(what, f.name, getattr(obj, f.name), rules)


def check_choice(what: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise PnasError(f"{what} setting {name} is {shown(value)}; choose one of {', '.join(choices)}")


def from_mapping(cls: type[T], data: Any, what: str) -> T:
    """``cls(**data)`` after rejecting unknown keys; ints and numeric strings become floats where
    the field is a float."""
    if not isinstance(data, Mapping):
        raise PnasError(f"{what} settings must be a mapping of keys to values, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise PnasError(
            f"unknown {what} setting(s) {', '.join(map(shown, unknown[:5]))} (known: {', '.join(sorted(known))})"
        )
    hints = typing.get_type_hints(cls)
    return cls(**{k: (_as_float(v) if hints[k] in (float, float | None) else v) for k, v in data.items()})


def check_size(data: Any, what: str) -> None:
    """Raise unless ``data`` (loaded YAML or JSON) keeps the size bounds of
    :func:`pnas_core.limits.size_problem` (a YAML alias bomb is refused in bounded time)."""
    problem = size_problem(data)
    if problem is not None:
        raise PnasError(f"{what} holds {problem} (YAML aliases?); a settings file holds a few dozen keys")


def read_mapping(path: str | os.PathLike[str], what: str) -> Any:
    """The content of a JSON or YAML (by extension) settings file; an empty file is ``{}``. Files
    over :data:`MAX_TEXT_FILE_BYTES` and YAML that expands beyond :func:`check_size` are refused."""
    p = Path(path)
    text = read_text(p, f"{what} settings file", MAX_TEXT_FILE_BYTES)  # a pipe such as bash's <(...) too
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = loads_json(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError, RecursionError
        raise PnasError(
            f"{what} settings file {p} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}"
        ) from exc
    check_size(data, f"{what} settings file {p}")
    return {} if data is None else data


def from_file(cls: type[T], path: str | os.PathLike[str], what: str) -> T:
    """Settings of ``cls`` from a JSON or YAML file; errors name the file and the key."""
    data = read_mapping(path, what)
    try:
        return cls.from_dict(data)  # type: ignore[attr-defined]
    except PnasError as exc:
        raise PnasError(f"{what} settings file {path}: {exc}") from exc
