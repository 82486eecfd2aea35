"""The workflow's ``replicates`` target end to end on the tiny config (2 seeds; PNAS, random search,
evolution and local search): it plans every seed × strategy, its comparison table holds what it
should, the PNAS replicate of the config's seed is the main search, and a deleted run replays from
the cache without training."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_project import TINY, make_project, planned_jobs, snakemake

from pnas_core.results import load as load_results
from pnas_core.search.comparison import train_images
from pnas_core.search.early_stop import EarlyStop
from pnas_core.search.replicates import read_run
from pnas_core.search.selection import Selection
from pnas_core.search.strategies import EvolutionStrategy, parse_strategy

pytestmark = pytest.mark.slow

STRATEGIES = ["pnas", "random", "evolution", "local"]
SEEDS = [0, 1]


@pytest.fixture(scope="session")
def replicated(finished: Path) -> Path:
    """The finished tiny project with its replicates run too (the main DAG's outputs untouched)."""
    jobs = planned_jobs(finished, "replicates")
    assert jobs["replicate"] == len(SEEDS) * len(STRATEGIES) and jobs["compare_replicates"] == 1, jobs
    proc = snakemake(finished, "replicates")
    assert "Paired differences" in proc.stdout  # the comparison is printed
    return finished


def test_comparison_table(replicated: Path) -> None:
    out = replicated / "results" / "tiny" / "replicates"
    table = pd.read_parquet(out / "comparison.parquet")
    assert list(table.columns) == [
        "seed", "strategy", "model", "val_acc", "best_so_far", "topk_mean_so_far",
        "cost", "cumulative_cost", "seconds", "cumulative_seconds",
    ]  # fmt: skip
    # every seed × strategy, each with the search's budget: 21 one-block cells + K = 3
    counts = table.groupby(["seed", "strategy"]).size()
    assert sorted(counts.index) == sorted((s, n) for s in SEEDS for n in STRATEGIES)
    assert set(counts) == {24}
    for (seed, name), part in table.groupby(["seed", "strategy"]):
        assert part["model"].tolist() == list(range(1, 25))
        assert part["best_so_far"].is_monotonic_increasing
        assert np.allclose(part["cumulative_cost"], part["cost"].cumsum())
        run, meta = read_run(out / name / f"seed{seed}.parquet")
        assert meta["seed"] == seed and meta["strategy"] == name and meta["cpu"] and meta["threads"] == 1
        # cost = the network's mult-adds × training images × epochs, from the run's own records
        expected = run["mult_adds"] * train_images(str(meta["dataset"])) * run["epochs"]
        assert np.allclose(part["cost"], expected) and (part["cost"] > 0).all()
        assert np.allclose(part["val_acc"], run["val_acc"], equal_nan=True)
        if name != "pnas":
            assert (run["num_blocks"] == 2).all() and run["cell"].is_unique
    text = (out / "comparison.txt").read_text()
    for base in STRATEGIES[1:]:
        assert re.search(rf"^pnas +{base} +best +M models ", text, re.M)
        assert re.search(rf"^pnas +{base} +top-5 mean +equal compute ", text, re.M)
    strategies = load_results(replicated / "results" / "tiny").replicates  # the notebook view of it
    assert strategies is not None and strategies["strategy"].tolist() == STRATEGIES
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["baseline"]) == set(STRATEGIES[1:]) and (paired["seeds"] == 2).all()
    assert (out / "replicates.png").stat().st_size > 0 and (out / "replicates.pdf").is_file()


def test_the_replicate_of_the_configs_seed_is_the_main_search(replicated: Path) -> None:
    results = replicated / "results" / "tiny"
    summary = pd.read_parquet(results / "summary.parquet")
    run, _ = read_run(results / "replicates" / "pnas" / "seed0.parquet")
    assert run["cell"].tolist() == summary["cell"].tolist()
    np.testing.assert_array_equal(run["val_acc"], summary["val_acc"].where(summary["status"] == "ok"))
    np.testing.assert_array_equal(run["pred_mean"], summary["pred_mean"].astype(np.float64))
    other, _ = read_run(results / "replicates" / "pnas" / "seed1.parquet")
    assert other["cell"].tolist() != run["cell"].tolist()  # another seed: another search


def test_a_deleted_run_replays_from_the_cache(replicated: Path) -> None:
    out = replicated / "results" / "tiny"
    run = out / "replicates" / "evolution" / "seed1.parquet"
    before, _ = read_run(run)
    entries = len(list((replicated / "results" / "cache").rglob("*.json")))
    run.unlink()
    # Snakemake keeps the comparison, whose input is gone, until the run is asked for
    assert planned_jobs(replicated, "replicates") == {}
    target = str(run.relative_to(replicated))
    assert planned_jobs(replicated, target) == {"replicate": 1}
    snakemake(replicated, target)
    log = (out / "logs" / "replicates" / "evolution" / "seed1.log").read_text()
    assert log.count(", cached)") == 24 and ", trained)" not in log  # replayed: nothing trained
    assert len(list((replicated / "results" / "cache").rglob("*.json"))) == entries
    after, _ = read_run(run)
    pd.testing.assert_frame_equal(after, before)
    assert planned_jobs(replicated, "replicates") == {}


def test_the_replicated_search_is_the_configured_one(tmp_path: Path) -> None:
    """The `pnas replicate` strategy text carries the search section's early stopping, its selection
    file (settings/selection.json) the search section's selection."""
    root = make_project(tmp_path)
    cfg = yaml.safe_load(TINY.read_text())
    cfg["search"].update(
        select_by="ucb", ucb_kappa=0.5, max_params=40000, pareto=True, pareto_cost="mult_adds",
        early_stop={"rungs": [1], "keep": 0.5, "fit_on": "all"},
    )  # fmt: skip
    cfg["train"]["epochs"] = 2
    cfg["replicates"] = {
        "seeds": [3],
        "baselines": ["evolution"],
        "evolution": {"population": 4, "sample": 4},
    }
    (root / "custom.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(root, "-n", "-p", "replicates", configs=("custom.yaml",))
    found = re.findall(r"--strategy (\S+) +(?:--selection (\S+) +)?--name (\w+)", proc.stdout)
    assert sorted(name for _, _, name in found) == ["evolution", "pnas"]
    files = {name: file.strip("'") for _, file, name in found}
    assert files == {"pnas": "results/tiny/settings/selection.json", "evolution": ""}
    assert "rule selection_settings:" in proc.stdout  # writes the search's selection keys to that file
    selection = Selection.from_mapping(cfg["search"])
    by_name = {
        name: parse_strategy(text.strip("'"), selection if files[name] else None) for text, _, name in found
    }
    pnas = by_name["pnas"]
    assert pnas.predictors == ("rnn", "mlp", "xgb") and pnas.early_stop == EarlyStop((1,), 0.5, "all")
    assert pnas.selection == Selection("ucb", 0.5, 40000, None, True, "mult_adds")
    assert by_name["evolution"] == EvolutionStrategy(4, 4)
    assert "train_seed3.json" in proc.stdout
    bad = {**cfg, "replicates": {"evolution": {"population": 3, "sample": 4}}}
    (root / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = snakemake(root, "-n", "replicates", configs=("bad.yaml",), check=False)
    assert proc.returncode != 0 and "replicates.evolution.sample: 4 is more than" in proc.stdout + proc.stderr
