"""The config's schemas: the section schemas are generated from the settings dataclasses (the
committed files are what `pnas schema` writes), config/README.md documents every key, and the
defaults a config leaves out are the paper's (config/paper.yaml spells them out)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from pnas_core.cli import main
from pnas_core.cli.settings_schema import schema_text, section_schemas
from pnas_core.surrogate import SurrogateSettings
from pnas_core.training.final import FinalSettings
from pnas_core.training.train import TrainSettings

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "workflow" / "schemas"
TOP = yaml.safe_load((SCHEMAS / "config.schema.yaml").read_text())
README = (REPO / "config" / "README.md").read_text()


def test_committed_schemas_are_the_generated_ones(tmp_path: Path) -> None:
    for section, schema in section_schemas().items():
        committed = (SCHEMAS / f"{section}.schema.json").read_text()
        assert committed == schema_text(schema), f"run `pnas schema` ({section})"
    assert main(["schema", "--out-dir", str(tmp_path)]) == 0
    for path in tmp_path.iterdir():
        assert path.read_text() == (SCHEMAS / path.name).read_text()


def documented_keys(heading: str) -> set[str]:
    """Keys in the first column of the tables under the README heading starting with ``heading``."""
    start = README.index(f"\n## {heading}")
    end = README.find("\n## ", start + 1)
    section = README[start : end if end > 0 else None]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))


@pytest.mark.parametrize("section", ["train", "surrogate", "final"])
def test_readme_documents_every_settings_key(section: str) -> None:
    keys = set(section_schemas()[section]["properties"])
    missing = keys - documented_keys(f"`{section}`")
    assert not missing, f"config/README.md does not document {section}.{sorted(missing)}"


def test_readme_documents_every_top_level_key() -> None:
    sections = {"search", "random_search", "quality", "benchmark", "replicates", "tracking"}
    assert set(TOP["properties"]) - sections - {"train", "surrogate", "final"} <= documented_keys("Top level")
    for section in sections:
        assert set(TOP["properties"][section]["properties"]) <= documented_keys(f"`{section}`"), section


def defaults(schema: dict) -> dict:
    return {k: v["default"] for k, v in schema["properties"].items() if "default" in v}


PAPER_OVER_DEFAULTS = {"search": {"select_by": "rnn"}}
"""Where config/paper.yaml departs from the defaults: the paper ranks by its LSTM ensemble, the
library (and so the schema) by the mean of the fitted predictors."""


def test_defaults_are_the_papers() -> None:
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    for section in ("search", "random_search", "quality"):
        want = defaults(TOP["properties"][section]) | PAPER_OVER_DEFAULTS.get(section, {})
        assert paper[section] == want, section
    for section, cls in (
        ("train", TrainSettings),
        ("final", FinalSettings),
        ("surrogate", SurrogateSettings),
    ):
        want = {k: v for k, v in cls.from_dict(paper[section]).to_dict().items() if k != "device"}
        got = {k: v for k, v in cls().to_dict().items() if k != "device"}
        assert got == want, section
        assert defaults(section_schemas()[section]) == {
            k: v for k, v in cls().to_dict().items() if k in section_schemas()[section]["properties"]
        }


@pytest.mark.parametrize("name", ["config/config.yaml", "config/paper.yaml", "tests/configs/tiny.yaml"])
def test_shipped_configs_pass_every_schema(name: str) -> None:
    cfg = yaml.safe_load((REPO / name).read_text())
    jsonschema.Draft202012Validator(TOP).validate(cfg)
    for section, schema in section_schemas().items():
        jsonschema.Draft202012Validator(schema).validate(cfg.get(section, {}))


def test_schema_bounds_match_the_dataclass_checks() -> None:
    # What the schema refuses, the dataclass refuses too, and the reverse (same Rules object).
    train = json.loads((SCHEMAS / "train.schema.json").read_text())["properties"]
    assert train["filters"]["minimum"] == 4 and train["lr"]["exclusiveMinimum"] == 0
    assert train["device"]["pattern"] == r"^(?:auto|cpu|cuda|cuda:[0-9]{1,3})(?![\s\S])"
    final = json.loads((SCHEMAS / "final.schema.json").read_text())["properties"]
    assert final["drop_path"]["exclusiveMaximum"] == 1
    assert "seed" not in final and "dataset" not in final  # filled in from the top level


def test_search_names_and_defaults_are_the_librarys() -> None:
    """The config schema's lists of names and their defaults are pnas_core.names's, and the
    predictors registered in pnas_core.surrogate are the listed ones."""
    from pnas_core.names import (
        COSTS,
        DEFAULT_PARETO_COST,
        DEFAULT_PREDICTORS,
        DEFAULT_SELECT_BY,
        PREDICTORS,
        SELECT_BY,
    )
    from pnas_core.surrogate import PREDICTORS as REGISTERED

    search = TOP["properties"]["search"]["properties"]
    assert tuple(search["predictors"]["items"]["enum"]) == PREDICTORS
    assert set(PREDICTORS) == set(REGISTERED)
    assert tuple(search["predictors"]["default"]) == DEFAULT_PREDICTORS
    assert tuple(search["select_by"]["enum"]) == SELECT_BY
    assert search["select_by"]["default"] == DEFAULT_SELECT_BY
    assert tuple(search["pareto_cost"]["enum"]) == COSTS
    assert search["pareto_cost"]["default"] == DEFAULT_PARETO_COST


def test_fit_on_and_the_cache_default_are_the_librarys() -> None:
    from pnas_core.names import DEFAULT_CACHE_DIR, DEFAULT_FIT_ON, FIT_ON

    early = TOP["properties"]["search"]["properties"]["early_stop"]["properties"]
    assert tuple(early["fit_on"]["enum"]) == FIT_ON
    assert f"{DEFAULT_FIT_ON} (the default" in early["fit_on"]["description"]
    assert TOP["properties"]["cache_dir"]["default"] == DEFAULT_CACHE_DIR


def test_the_workflows_figure_stems_are_the_librarys() -> None:
    """rules/common.smk spells the figure stems (no pnas_core import at parse time): pnas_core.names's."""
    from pnas_core.names import FIGURE_STEMS

    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    spelled = re.search(r"^FIGURE_STEMS = (\{.*?^\})$", common, re.M | re.S)
    assert spelled and ast.literal_eval(spelled[1]) == FIGURE_STEMS
