"""The workflow with the selection keys (through Snakemake): UCB within a parameter budget, and Pareto
picks against multiply-adds, on the tiny config. The cost the selection saw is the cost training measured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_project import TINY, make_project, snakemake

from pnas_core.search.selection import pareto_fronts
from pnas_core.space.cells import Space, unique_rows
from pnas_core.training.cost import search_costs
from pnas_core.training.train import TrainSettings

pytestmark = pytest.mark.slow


def variant(root: Path, name: str, search: dict) -> str:
    """A config file overlaying the tiny config: its own name, no baseline or quality experiment."""
    path = root / f"{name}.yaml"
    overlay = {"name": name, "search": search, "random_search": {"enabled": False}}
    path.write_text(yaml.safe_dump(overlay | {"quality": {"enabled": False}}))
    return path.name


def search_targets(name: str) -> list[str]:
    return [f"results/{name}/summary.parquet", f"results/{name}/figures/accuracy_vs_size.csv"]


def level2(root: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    out = root / "results" / name
    return (
        pd.read_parquet(out / "level2" / "scored.parquet"),
        pd.read_parquet(out / "level2" / "candidates.parquet"),
        pd.read_parquet(out / "level2" / "trained.parquet"),
    )


def test_ucb_within_a_budget_and_pareto_picks(tmp_path: Path) -> None:
    root = make_project(tmp_path / "wf")
    cfg = yaml.safe_load(TINY.read_text())
    train = TrainSettings.from_dict({**cfg["train"], "dataset": cfg["dataset"], "seed": cfg["seed"]})
    space = Space.from_names(cfg["search"]["ops"])
    # level 1 trains every 1-block cell; level 2 scores their distinct children (up to block order)
    children, _, _ = space.canonical_children(space.one_block_tokens())
    children = unique_rows(children)
    limit = int(np.quantile(search_costs(train)(children)["params"], 0.4))

    ucb = variant(root, "tiny-ucb", {"select_by": "ucb", "ucb_kappa": 2.0, "max_params": limit})
    snakemake(root, *search_targets("tiny-ucb"), configs=("tiny.yaml", ucb))
    scored, cand, trained = level2(root, "tiny-ucb")
    assert len(scored) == len(children) and (scored["params"] > limit).any()
    assert len(cand) == cfg["search"]["beam_size"] and (cand["params"] <= limit).all()
    assert (cand["select_by"] == "ucb").all() and (cand["ucb_kappa"] == 2.0).all()
    preds = cfg["search"]["predictors"]
    pooled = sum(
        scored[f"std_{p}"].astype(float) ** 2 + (scored[f"pred_{p}"] - scored["pred_mean"]) ** 2
        for p in preds
    )
    within = scored.assign(ucb=scored["pred_mean"] + 2.0 * np.sqrt(pooled / len(preds)))
    within = within[within["params"] <= limit].sort_values(["ucb", "cell"], ascending=[False, True])
    assert cand["cell"].tolist() == within["cell"].head(len(cand)).tolist()
    np.testing.assert_allclose(cand["score"], within["ucb"].head(len(cand)), rtol=1e-5)
    measured = cand.merge(trained, on="cell", suffixes=("", "_trained"))
    assert (measured["params"] == measured["params_trained"]).all()
    assert (measured["mult_adds"] == measured["mult_adds_trained"]).all()
    summary = pd.read_parquet(root / "results" / "tiny-ucb" / "summary.parquet")
    assert (summary.loc[summary["level"] == 2, "max_params"] == limit).all()
    log = (root / "results" / "tiny-ucb" / "logs" / "level2" / "select.log").read_text()
    assert f"by ucb (kappa 2) within max_params {limit:,}" in log

    pareto = variant(root, "tiny-pareto", {"pareto": True, "pareto_cost": "mult_adds"})
    snakemake(root, *search_targets("tiny-pareto"), configs=("tiny.yaml", pareto))
    scored, cand, trained = level2(root, "tiny-pareto")
    assert cand["front"].notna().all() and (cand["pareto_cost"] == "mult_adds").all()
    fronts = pareto_fronts(scored["pred_mean"].to_numpy(), scored["mult_adds"].to_numpy())
    front_of = dict(zip(scored["cell"], fronts, strict=True))
    assert cand["front"].tolist() == [front_of[c] for c in cand["cell"]]
    whole = scored["cell"][fronts < cand["front"].max()]
    assert set(whole) <= set(cand["cell"])  # every front before the last one picked is taken whole
    measured = cand.merge(trained, on="cell", suffixes=("", "_trained"))
    assert (measured["mult_adds"] == measured["mult_adds_trained"]).all()
    figure = pd.read_csv(root / "results" / "tiny-pareto" / "figures" / "accuracy_vs_size.csv")
    assert figure["predicted_front"].notna().sum() == len(cand)
