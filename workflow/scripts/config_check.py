"""The config check of rules/validate.smk, as a module the tests call in-process: every key checked
before any job runs, each error one line naming the key.

The top level is checked against schemas/config.schema.yaml, which also fills in the defaults of keys
a config leaves out; the train, surrogate and final sections against the schemas `pnas schema`
generates from the settings dataclasses (their defaults stay with the dataclasses); then the checks
that span keys (``data_root`` and ``cache_dir`` paths the system can open, the dataset's folder;
its layout inside ``data_root`` is checked by pnas_core.training.data in the first training job). Integers are
strict (YAML's ``1.0`` is a float, and the jobs refuse it), and the config files and the config are
size-checked within a bounded number of steps before anything formats or validates them, so a YAML
alias bomb is refused at once. tests/test_config_check.py checks that this refuses exactly what the
jobs refuse. Standard library, PyYAML, jsonschema and the library's two standard-library modules of
rules it shares with the workflow (:mod:`pnas_core.limits`, the bounds and the size check of a
loaded file; :mod:`pnas_core.rungs`, early stopping's rungs) only: no other pnas_core module, no
torch, numpy or pandas, so the workflow's parse time stays cheap (a test imports this file in a fresh
interpreter and checks).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import reprlib
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import validators

from pnas_core.limits import MAX_MESSAGE, MAX_TEXT_FILE_BYTES, size_problem
from pnas_core.rungs import rungs_problem

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
SETTINGS_SECTIONS = ("train", "surrogate", "final")
FILLED_FROM_TOP = {
    "train": {"dataset": "dataset", "data_root": "data_root", "seed": "seed"},
    "surrogate": {"max_blocks": "search.max_blocks", "seed": "seed"},
    "final": {"dataset": "dataset", "data_root": "data_root", "seed": "seed"},
}
"""Settings fields the workflow fills in from other keys (pnas_core.cli.settings_schema.FILLED_BY_WORKFLOW)."""
NEEDS_DATA_ROOT = ("cifar10", "imagefolder")

_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlevel = 2


class ConfigError(Exception):
    """A config the jobs would refuse; ``str()`` is one readable line starting ``pnas config:``."""

    def __init__(self, message: str) -> None:
        line = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in message[: MAX_MESSAGE * 2])
        if len(line) > MAX_MESSAGE:
            line = line[: MAX_MESSAGE - 3] + "..."
        super().__init__(f"pnas config: {line}")


def shown(value: Any) -> str:
    """``repr(value)`` cut short to at most 200 characters, in bounded time whatever ``value`` holds."""
    text = _REPR.repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def check_files(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse a config file larger than :data:`MAX_TEXT_FILE_BYTES` (a config is a few kilobytes)."""
    for path in paths:
        size = os.stat(path).st_size if os.path.isfile(path) else 0
        if size > MAX_TEXT_FILE_BYTES:
            raise ConfigError(
                f"config file {path} is {size:,} bytes; a config is at most {MAX_TEXT_FILE_BYTES:,}"
            )


def check_size(config: Any) -> None:
    """Refuse a config beyond the size bounds of :func:`pnas_core.limits.size_problem`, after a bounded
    number of steps (a YAML alias counts as often as it is used)."""
    problem = size_problem(config)
    if problem is not None:
        raise ConfigError(f"the config holds {problem} (YAML aliases?); a config holds a few hundred values")


def _is_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


def _set_defaults(validator: Any, properties: Mapping, instance: Any, schema: Mapping) -> Any:
    """JSON Schema's ``properties``, filling in each missing key's ``default`` (a copy) first."""
    if isinstance(instance, dict):
        for key, subschema in properties.items():
            if "default" in subschema and key not in instance:
                instance[key] = copy.deepcopy(subschema["default"])
    yield from validators.Draft202012Validator.VALIDATORS["properties"](
        validator, properties, instance, schema
    )


_Strict = validators.extend(
    validators.Draft202012Validator,
    type_checker=validators.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)
_StrictWithDefaults = validators.extend(_Strict, {"properties": _set_defaults})


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` of :data:`SCHEMAS` (YAML or JSON)."""
    with open(SCHEMAS / name) as fh:
        return yaml.safe_load(fh) if name.endswith(".yaml") else json.load(fh)


def check_schema(data: Any, name: str, where: str, set_default: bool) -> None:
    """Validate ``data`` (the config or its section ``where``) against the schema ``name``, filling in
    defaults if ``set_default``; the first error becomes one line naming the key."""
    schema = load_schema(name)
    validator = (_StrictWithDefaults if set_default else _Strict)(schema)
    error = next(iter(validator.iter_errors(data)), None)
    if error is None:
        return
    key = ".".join([*([where] if where else []), *map(str, error.absolute_path)])
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known), key=str)
        prefix = f"{key}." if key else ""
        name = unknown[0][:80] if isinstance(unknown[0], str) else shown(unknown[0])
        raise ConfigError(f"{prefix}{name}: unknown key (known: {', '.join(known)})")
    if error.validator == "pattern":
        raise ConfigError(
            f"{key}: {shown(error.instance)} is not valid: {error.schema.get('description', '')}"
        )
    if error.validator == "type":
        raise ConfigError(
            f"{key or 'config'}: {shown(error.instance)} is not of type {error.validator_value}"
        )
    raise ConfigError(f"{key or 'config'}: {error.message}")


def numbers_from_strings(data: dict, schema: Mapping) -> None:
    """YAML 1.1 reads ``1e-4`` as a string: read numeric strings as numbers where the schema wants a
    number, as pnas_core's settings readers do."""
    for key, prop in schema.get("properties", {}).items():
        wanted = prop.get("type", [])
        value = data.get(key)
        if "number" in wanted and isinstance(value, str):
            try:
                data[key] = float(value)
            except (ValueError, OverflowError):
                pass
        elif isinstance(value, dict) and wanted == "object":
            numbers_from_strings(value, prop)


def non_finite(data: Any, where: str) -> tuple[str, Any] | None:
    """The first (key, value) under ``data`` holding NaN, infinity or an integer beyond float's range."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        path = f"{where}.{key}" if where else str(key)
        if (isinstance(value, float) and not math.isfinite(value)) or (
            isinstance(value, int) and abs(value) > sys.float_info.max
        ):
            return path, value
        found = non_finite(value, path) if isinstance(value, dict | list) else None
        if found:
            return found
    return None


def path_problem(path: str) -> str | None:
    """Why the operating system would refuse ``path`` (a NUL character, a name it cannot encode, more
    than 4095 bytes or a part longer than 255 bytes), else None. Any other character is fine: the
    rules quote every path they put on a command line."""
    try:
        raw = os.fsencode(path)
    except UnicodeEncodeError:
        return "it holds a character the file system cannot encode"
    if b"\0" in raw:
        return "it holds a NUL character"
    if len(raw) > 4095 or any(len(part) > 255 for part in raw.split(b"/")):
        return "it is longer than the operating system allows (4095 bytes, 255 per folder name)"
    return None


def section_default(section: str, key: str) -> Any:
    """The settings dataclass's default of ``section.key`` (from its generated schema)."""
    return load_schema(f"{section}.schema.json")["properties"][key]["default"]


def check_config(config: dict) -> None:
    """Check ``config`` (as Snakemake loaded it) and fill in the top level's defaults, in place."""
    check_size(config)
    check_schema(config, "config.schema.yaml", "", set_default=True)
    for section in SETTINGS_SECTIONS:
        for key, source in FILLED_FROM_TOP[section].items():
            if key in config[section]:
                raise ConfigError(
                    f"{section}.{key}: set by the key {source}, not here (remove it from {section}:)"
                )
        schema = load_schema(f"{section}.schema.json")
        numbers_from_strings(config[section], schema)
        check_schema(config[section], f"{section}.schema.json", section, set_default=False)
    bad = non_finite(config, "")
    if bad:
        raise ConfigError(f"{bad[0]}: {shown(bad[1])} is not a finite number")
    check_across_keys(config)


def check_across_keys(config: dict) -> None:
    """The checks that span keys (on a config the schemas passed)."""
    search, quality = config["search"], config["quality"]
    if search["select_by"] not in [*search["predictors"], "mean", "ucb"]:
        raise ConfigError(
            f"search.select_by: {search['select_by']!r} is not one of search.predictors "
            f"({', '.join(search['predictors'])}), mean or ucb"
        )
    if quality["train_size"] > quality["cells_per_size"]:
        raise ConfigError(
            f"quality.train_size: {quality['train_size']} is more than quality.cells_per_size "
            f"({quality['cells_per_size']}), the cells there are to fit on"
        )
    evolution = config["replicates"]["evolution"]
    if evolution["sample"] > evolution["population"]:
        raise ConfigError(
            f"replicates.evolution.sample: {evolution['sample']} is more than replicates.evolution.population "
            f"({evolution['population']}), the members a tournament draws from"
        )
    early = search["early_stop"]
    if early is not None:
        epochs = config["train"].get("epochs", section_default("train", "epochs"))
        every = config["train"].get("eval_every", section_default("train", "eval_every"))
        problem = rungs_problem(early["rungs"], epochs, every)
        if problem:
            raise ConfigError(f"search.early_stop.rungs: {problem}")
    for key in ("data_root", "cache_dir"):
        problem = None if config[key] is None else path_problem(config[key])
        if problem:
            raise ConfigError(f"{key}: {shown(config[key])} is not a usable path: {problem}")
    if config["dataset"] in NEEDS_DATA_ROOT:
        root = config["data_root"]
        if not root:
            raise ConfigError(
                f"dataset {config['dataset']!r} needs data_root (e.g. --config data_root=/data/cifar10)"
            )
        if not Path(root).is_dir():
            raise ConfigError(f"data_root {shown(root)} is not a folder")
