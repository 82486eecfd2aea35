"""Code hashes of the workflow's rules: each is the hash of the import closure of the pnas command
the rule runs (workflow/scripts/code_closure.py), so editing a module reruns exactly its users."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location(
    "code_closure", REPO / "workflow" / "scripts" / "code_closure.py"
)
code_closure = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(code_closure)

COMMANDS = {
    "train": "train_cmds.run_train",
    "merge": "train_cmds.run_merge",
    "promote": "train_cmds.run_promote",
    "finish": "train_cmds.run_finish",
    "enumerate": "surrogate_cmds.run_enumerate",
    "sample": "surrogate_cmds.run_sample",
    "fit": "surrogate_cmds.run_fit",
    "expand": "surrogate_cmds.run_expand_score",
    "select": "surrogate_cmds.run_select",
    "eval": "surrogate_cmds.run_eval",
    "summarize": "summary_cmds.run",
    "figure_quality": "figure_cmds.run_quality",
    "figure_pareto": "figure_cmds.run_pareto",
    "final": "final_cmds.run_final_train",
    "export": "final_cmds.run_export",
}


def closure(command: str, root: Path = REPO / "pnas_core") -> set[str]:
    return {p.relative_to(root).as_posix() for p in code_closure.command_files(root, command)}


def test_closures_hold_what_the_old_lists_missed() -> None:
    train = closure("train_cmds.run_train")
    assert {
        "training/complexity.py",
        "io/settings_io.py",
        "training/loop.py",
        "cli/__init__.py",
        "cli/train_cmds.py",
    } <= train
    assert not {"surrogate/__init__.py", "figures/style.py", "training/final.py"} & train
    assert {"figures/style.py", "io/tables.py", "cli/figure_cmds.py"} <= closure("figure_cmds.run_quality")
    assert "search/quality.py" in closure("surrogate_cmds.run_eval")
    # imports under `if TYPE_CHECKING:` never run: beam's Predictor type hint does not pull the predictors in
    assert not any(f.startswith("surrogate/") for f in closure("surrogate_cmds.run_select"))
    assert "surrogate/xgb.py" in closure("surrogate_cmds.run_fit")


def test_unknown_command_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="run_trian"):
        closure("train_cmds.run_trian")


@pytest.mark.parametrize(
    ("module", "changed"),
    [
        ("training/complexity.py", {"train", "final", "expand"}),  # expand-score costs children (cost.py)
        ("search/quality.py", {"eval"}),
        ("figures/style.py", {"figure_quality", "figure_pareto", "final"}),
        ("surrogate/rnn.py", {"fit", "expand", "eval"}),
        ("search/scoring.py", {"expand"}),  # beam's select/enumerate/sample jobs stay free of the predictors
        ("surrogate/jobs.py", {"fit", "expand", "eval"}),
        ("search/beam.py", {"enumerate", "sample", "expand", "select", "eval", "promote"}),
        ("search/early_stop.py", {"promote", "finish"}),
        ("training/checkpoint.py", {"train", "final", "expand"}),  # expand-score reads train settings
    ],
)
def test_editing_a_module_changes_the_hash_of_its_users_only(
    tmp_path: Path, module: str, changed: set[str]
) -> None:
    root = tmp_path / "pnas_core"
    shutil.copytree(REPO / "pnas_core", root, ignore=shutil.ignore_patterns("__pycache__"))
    code_closure._parse.cache_clear()
    before = {k: code_closure.command_hash(c, root) for k, c in COMMANDS.items()}
    with open(root / module, "a") as fh:
        fh.write("\n# an edit\n")
    code_closure._parse.cache_clear()
    after = {k: code_closure.command_hash(c, root) for k, c in COMMANDS.items()}
    assert {k for k in COMMANDS if before[k] != after[k]} == changed
