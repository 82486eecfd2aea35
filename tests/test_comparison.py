"""pnas_core.search.comparison: readings after M models and at equal compute, paired differences with the
Wilcoxon test, and the models and compute needed to reach a baseline's best, on numbers worked out by
hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from pnas_core.errors import PnasError
from pnas_core.search.comparison import (
    Runs,
    compute_curves,
    final_readings,
    long_table,
    paired_differences,
    reach_baseline,
    strategy_summary,
    train_images,
    training_cost,
)

NAN = np.nan


@pytest.fixture
def runs() -> Runs:
    """Two seeds, four models each. "a" trains cheap models first, "b" costly ones."""
    acc = {
        "a": np.array([[0.5, 0.7, NAN, 0.9], [0.6, 0.6, 0.8, 0.7]]),
        "b": np.array([[0.8, 0.6, 0.7, 0.85], [0.9, 0.5, 0.5, 0.5]]),
    }
    cost = {"a": np.array([[1.0, 1, 1, 1], [1, 1, 1, 1]]), "b": np.array([[2.0, 2, 2, 2], [1, 1, 4, 4]])}
    seconds = {k: v / 10 for k, v in cost.items()}
    return Runs(acc, cost, seconds, [3, 7])


def test_training_cost_is_mult_adds_times_images_times_epochs() -> None:
    assert training_cost(np.array([10, 20]), np.array([4, 2]), 1077).tolist() == [43080.0, 43080.0]
    assert train_images("digits-1x8x8-1077/360/360-daf38d758bfe1de6") == 1077
    with pytest.raises(PnasError, match="not name-CxHxW-train/val/test-hash"):
        train_images("digits")


def test_readings_after_all_models_and_at_equal_compute(runs: Runs) -> None:
    # totals: a 4 and 4, b 8 and 10 -> equal compute is 4 in both seeds
    assert runs.equal_compute().tolist() == [4.0, 4.0]
    r = final_readings(runs, top_k=2)
    assert r["a"]["best"].tolist() == [0.9, 0.8] and r["b"]["best"].tolist() == [0.85, 0.9]
    assert r["a"]["topk"] == pytest.approx([0.8, 0.75])  # NaN (failed) models are skipped
    # within cost 4, b has its first two models (seed 3) and first two (seed 7: 1 + 1, the next is 4 more)
    assert r["b"]["models_ec"].tolist() == [2, 2] and r["a"]["models_ec"].tolist() == [4, 4]
    assert r["b"]["best_ec"].tolist() == [0.8, 0.9] and r["b"]["topk_ec"] == pytest.approx([0.7, 0.7])
    summary = strategy_summary(runs, top_k=2).set_index("strategy")
    assert summary.loc["a", "best_mean"] == pytest.approx(0.85) and summary.loc["b", "cost_mean"] == 9


def test_paired_differences_and_wilcoxon(runs: Runs) -> None:
    table = paired_differences(runs, ["b"], top_k=2).set_index(["measure", "reading"])
    row = table.loc[("best", "models")]
    assert (row["strategy"], row["baseline"], row["seeds"]) == ("a", "b", 2)
    assert row["mean"] == pytest.approx((0.05 - 0.1) / 2)
    assert (row["wins"], row["ties"], row["losses"]) == (1, 0, 1)
    assert row["p"] == pytest.approx(wilcoxon([0.05, -0.1]).pvalue)
    assert row["lo"] < row["mean"] < row["hi"]
    at_compute = table.loc[("best", "compute")]
    assert at_compute["mean"] == pytest.approx((0.1 - 0.1) / 2)


def test_models_and_compute_to_reach_the_baseline(runs: Runs) -> None:
    reach = reach_baseline(runs, ["b"]).set_index("strategy")
    # seed 3: b's best 0.85, a reaches it at model 4 (cost 4); seed 7: b's best 0.9, a never does
    assert reach.loc["a", "reached"] == 1 and np.isinf(reach.loc["a", "models"])
    # b against itself: seed 3 at model 4 (cost 8), seed 7 at model 1 (cost 1)
    assert reach.loc["b", "models"] == 2.5 and reach.loc["b", "compute"] == 4.5


def test_long_table_accumulates_cost_and_best_so_far(runs: Runs) -> None:
    table = long_table(runs, top_k=2)
    assert len(table) == 16 and set(table["seed"]) == {3, 7}
    for _, part in table.groupby(["strategy", "seed"]):
        assert np.allclose(part["cumulative_cost"], part["cost"].cumsum())
        assert part["best_so_far"].is_monotonic_increasing
    curve = compute_curves(runs, top_k=2, points=8)
    # b's cheapest seed spent 8: its curve ends there; a's (4) at 4
    assert curve.groupby("strategy")["compute"].max().to_dict() == {"a": 4.0, "b": 8.0}
    a_end = curve[(curve["strategy"] == "a") & (curve["compute"] == 4.0)]
    assert a_end["best_mean"].tolist() == pytest.approx([0.85])
    # at 5 (grid 1.25 apart: 5.0), b has models 1-2 of seed 3 (0.8) and 1-2 of seed 7 (0.9)
    b_at_5 = curve[(curve["strategy"] == "b") & (curve["compute"] == 5.0)]
    assert b_at_5["best_mean"].tolist() == pytest.approx([0.85])


def test_runs_must_be_seeds_by_models() -> None:
    with pytest.raises(PnasError, match="seeds × models"):
        Runs({"a": np.zeros((2, 3))}, {"a": np.zeros((2, 2))}, {"a": np.zeros((2, 3))}, [0, 1])


def _run(path, name: str, seed: int, acc: list[float]) -> None:
    from pnas_core.search.replicates import run_table, write_run

    n = len(acc)
    records = pd.DataFrame(
        {
            "cell": [f"0:sep3x3,1:sep3x3;{i % 3}:identity,0:max3x3" for i in range(n)],
            "num_blocks": 2,
            "val_acc": acc,
            "status": ["ok" if a == a else "failed" for a in acc],
            "epochs": 4,
            "params": 100,
            "mult_adds": 1000,
            "train_seconds": 1.5,
        }
    )
    write_run(run_table(records, train_images=10), path, {"strategy": name, "seed": seed})


def test_run_tables_read_back_as_runs(tmp_path) -> None:
    from pnas_core.search.replicates import read_runs

    paths = []
    for name in ("random", "pnas"):
        for seed in (1, 0):
            paths.append(tmp_path / f"{name}{seed}.parquet")
            _run(paths[-1], name, seed, [0.5, NAN, 0.7])
    runs, metas = read_runs(paths, first="pnas")
    assert runs.strategies == ["pnas", "random"] and runs.seeds == [0, 1]
    assert np.isnan(runs.accuracy["pnas"][0, 1]) and runs.accuracy["pnas"][1, 2] == 0.7
    assert (runs.cost["random"] == 1000 * 10 * 4).all() and metas["pnas"]["seed"] in (0, 1)
    with pytest.raises(PnasError, match="strategy 'random' ran seeds \\[1\\], others ran \\[0, 1\\]"):
        read_runs([p for p in paths if p.name != "random0.parquet"], first="pnas")
    _run(tmp_path / "short.parquet", "random", 0, [0.5])
    with pytest.raises(PnasError, match="'random' has seed 0 twice"):
        read_runs([*paths, tmp_path / "short.parquet"])
