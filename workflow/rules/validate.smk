# Every config key checked before any job runs (a dry run fails too), each error naming its key:
# the top level against config.schema.yaml, which also fills in the defaults of keys a config leaves
# out; the train, surrogate and final sections against the schemas `pnas schema` generates from the
# settings dataclasses (their defaults stay with the dataclasses); then the checks that span keys.
# Parse time stays cheap: plain JSON/YAML schemas, no pnas_core or torch import.
import json
import math
from pathlib import Path

import jsonschema
from snakemake.utils import validate

SETTINGS_SECTIONS = ("train", "surrogate", "final")
FILLED_FROM_TOP = {
    "train": {"dataset": "dataset", "data_root": "data_root", "seed": "seed"},
    "surrogate": {"max_blocks": "search.max_blocks", "seed": "seed"},
    "final": {"dataset": "dataset", "data_root": "data_root", "seed": "seed"},
}
"""Settings fields the workflow fills in from other keys (pnas_core.settings_schema.FILLED_BY_WORKFLOW)."""


def fail(message):
    """Stop before any job runs with a message naming the problem."""
    raise WorkflowError(f"pnas config: {message}")


def check_schema(data, schema, where, set_default):
    """Validate ``data`` (the config or one section, named ``where``) against ``schema`` (a path
    relative to this file); the first error becomes one line naming the key."""
    try:
        validate(data, schema=schema, set_default=set_default)
    except WorkflowError as exc:
        error = exc.__context__
        if not isinstance(error, jsonschema.ValidationError):
            raise
        key = ".".join([*([where] if where else []), *map(str, error.absolute_path)])
        if error.validator == "additionalProperties":
            known = sorted(error.schema.get("properties", {}))
            unknown = sorted(set(error.instance) - set(known))
            prefix = f"{key}." if key else ""
            fail(f"{prefix}{unknown[0]}: unknown key (known: {', '.join(known)})")
        fail(f"{key or 'config'}: {error.message}")


def numbers_from_strings(data, schema):
    """YAML 1.1 reads ``1e-4`` as a string: read numeric strings as numbers where the schema wants a
    number (pnas_core's settings readers do the same)."""
    for key, prop in schema.get("properties", {}).items():
        wanted = prop.get("type", [])
        if key in data and isinstance(data[key], str) and "number" in wanted:
            try:
                data[key] = float(data[key])
            except ValueError:
                pass
        elif key in data and isinstance(data[key], dict) and wanted == "object":
            numbers_from_strings(data[key], prop)


def non_finite(data, where):
    """The first (key, value) under ``data`` holding NaN or infinity, else None."""
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        path = f"{where}.{key}" if where else str(key)
        if isinstance(value, float) and not math.isfinite(value):
            return path, value
        found = non_finite(value, path) if isinstance(value, dict | list) else None
        if found:
            return found
    return None


check_schema(config, "../schemas/config.schema.yaml", "", set_default=True)
for _section in SETTINGS_SECTIONS:
    for _key, _source in FILLED_FROM_TOP[_section].items():
        if _key in config[_section]:
            fail(f"{_section}.{_key}: set by the key {_source}, not here (remove it from {_section}:)")
    with open(Path(workflow.basedir) / "schemas" / f"{_section}.schema.json") as _fh:
        numbers_from_strings(config[_section], json.load(_fh))
    check_schema(config[_section], f"../schemas/{_section}.schema.json", _section, set_default=False)
_bad = non_finite(config, "")
if _bad:
    fail(f"{_bad[0]}: {_bad[1]} is not a finite number")
if config["search"]["select_by"] not in [*config["search"]["predictors"], "mean", "ucb"]:
    fail(
        f"search.select_by: {config['search']['select_by']!r} is not one of search.predictors "
        f"({', '.join(config['search']['predictors'])}), mean or ucb"
    )
if config["quality"]["train_size"] > config["quality"]["cells_per_size"]:
    fail(
        f"quality.train_size: {config['quality']['train_size']} is more than quality.cells_per_size "
        f"({config['quality']['cells_per_size']}), the cells there are to fit on"
    )
_evolution = config["replicates"]["evolution"]
if _evolution["sample"] > _evolution["population"]:
    fail(
        f"replicates.evolution.sample: {_evolution['sample']} is more than replicates.evolution.population "
        f"({_evolution['population']}), the members a tournament draws from"
    )

with open(Path(workflow.basedir) / "schemas" / "train.schema.json") as _fh:
    _TRAIN_SCHEMA = json.load(_fh)


def train_value(key):
    """A train setting: the config's value, else the settings dataclass's default (from its schema)."""
    return config["train"].get(key, _TRAIN_SCHEMA["properties"][key]["default"])


_early = config["search"]["early_stop"]
if _early is not None:
    _rungs, _epochs, _every = _early["rungs"], train_value("epochs"), train_value("eval_every")
    if _rungs != sorted(set(_rungs)) or _rungs[-1] >= _epochs or any(r % _every for r in _rungs):
        fail(
            f"search.early_stop.rungs: {_rungs} must be increasing epochs below train.epochs ({_epochs}), "
            f"each a multiple of train.eval_every ({_every})"
        )
