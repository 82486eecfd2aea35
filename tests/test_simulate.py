"""``pnas simulate``: strategies replayed on the shipped table are deterministic for a seed, and the
strategy table's numbers mean what they say."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pnas_core.benchmark import load_table
from pnas_core.errors import PnasError
from pnas_core.simulate import Simulation, check_strategies, curves, simulate, summarize


@pytest.fixture(scope="module")
def table():
    return load_table("digits_b2")


def test_simulation_is_deterministic_for_a_seed(table) -> None:
    runs = [simulate(table, ["pnas:mean", "random"], [1], beam_size=4) for _ in range(2)]
    for name in ("pnas:mean", "random"):
        np.testing.assert_array_equal(runs[0].accuracy[name], runs[1].accuracy[name])
        assert runs[0].cells[name] == runs[1].cells[name]
    pnas = runs[0].cells["pnas:mean"][0]
    level1 = table.cells.loc[table.cells["num_blocks"] == 1, "cell"]
    assert set(pnas[: len(level1)]) == set(level1)  # level 1: every 1-block cell
    assert len(pnas) <= len(level1) + 4 and len(set(pnas)) == len(pnas)
    random = runs[0].cells["random"][0]
    assert len(random) == len(level1) + 4 and all(c.count(";") == 1 for c in random)  # B-block cells
    assert simulate(table, ["random"], [2]).cells != simulate(table, ["random"], [3]).cells  # seeds differ


def test_observed_accuracy_is_the_tables(table) -> None:
    sim = simulate(table, ["random"], [5], beam_size=4)
    rows = table.rows.set_index(["cell", "seed"])["val_acc"]
    observed = sim.accuracy["random"][0]
    for cell, acc in zip(sim.cells["random"][0], observed, strict=True):
        assert acc in {rows[cell, s] for s in table.seeds}


def test_strategy_table_numbers(table) -> None:
    # two seeds, four models; "fast" reaches random's final mean best (0.85) after 2 models
    acc = {
        "fast": np.array([[0.8, 0.9, 0.7, 0.6], [0.7, 0.8, 0.9, 0.6]]),
        "random": np.array([[0.5, 0.6, 0.8, 0.9], [0.5, 0.6, 0.7, 0.8]]),
    }
    mean_acc = np.nanmean(table.accuracy, axis=1)
    best_cell = table.cells["cell"].iloc[-1 - int(np.nanargmax(mean_acc[::-1]))]  # the last of any ties
    cells = {"fast": [[best_cell], ["x"]], "random": [["x"], ["y"]]}
    sim = Simulation(acc, cells, [0, 1], {}, {}, {})
    row = summarize(sim, table, top_k=2).set_index("strategy")
    assert row.loc["random", "best_mean"] == pytest.approx(0.85)
    assert row.loc["fast", "best_mean"] == pytest.approx(0.9)
    assert row.loc["fast", "best_lo"] == row.loc["fast", "best_hi"] == pytest.approx(0.9)  # no spread
    assert row.loc["random", "best_lo"] < 0.85 < row.loc["random", "best_hi"]
    assert row.loc["fast", "models_to_random_best"] == 2  # mean best after 2 models: (0.9 + 0.8) / 2
    assert row.loc["random", "models_to_random_best"] == 4
    assert row.loc["fast", "ratio_best"] == pytest.approx(0.5)
    assert row.loc["fast", "found_best"] == 0.5 and row.loc["random", "found_best"] == 0
    curve = curves(sim, top_k=2)
    fast = curve[curve["strategy"] == "fast"]
    assert fast["topk_mean"].tolist()[1:] == pytest.approx([0.8, 0.85, 0.85])


@pytest.mark.parametrize(
    "strategies, message",
    [(["bogus"], "unknown strategy"), (["random", "random"], "distinct"), ([], "at least one")],
)
def test_bad_strategies_are_refused(strategies, message) -> None:
    with pytest.raises(PnasError, match=message):
        check_strategies(strategies)


def test_bad_pnas_arguments_name_the_strategy(table) -> None:
    with pytest.raises(PnasError, match="strategy pnas:rnn:mlp"):
        simulate(table, ["pnas:rnn:mlp"], [0], beam_size=2)


def test_cli_writes_the_strategy_table_and_figure(tmp_path) -> None:
    cmd = [sys.executable, "-m", "pnas_core", "simulate", "--seeds", "2", "--beam-size", "4"]
    proc = subprocess.run(
        [*cmd, "--strategies", "pnas:xgb", "random", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert "pnas:xgb" in proc.stdout and "random" in proc.stdout and "predictor fitting: xgb" in proc.stdout
    summary = pd.read_csv(tmp_path / "strategies.csv")
    assert summary["strategy"].tolist() == ["pnas:xgb", "random"]
    assert (tmp_path / "simulation.png").stat().st_size > 0 and (tmp_path / "simulation.csv").is_file()
    bad = subprocess.run(
        [*cmd, "--strategies", "nope", "--out-dir", str(tmp_path)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "unknown strategy 'nope'" in bad.stderr


def test_early_stopping_on_the_table_follows_the_rungs(table) -> None:
    from pnas_core.early_stop import EarlyStop
    from pnas_core.search import TableEvaluator, run_search
    from pnas_core.simulate import SIMULATION_SURROGATE

    evaluator = TableEvaluator(table, 1)
    settings = SIMULATION_SURROGATE.__class__.from_dict({**SIMULATION_SURROGATE.to_dict(), "max_blocks": 2})
    summary = run_search(
        table.space, evaluator, 4, ["xgb"], "xgb", settings, early_stop=EarlyStop((1, 2), 0.5)
    ).summary
    level1 = summary[summary["level"] == 1]
    assert level1["epochs"].value_counts().to_dict() == {1: 18, 2: 9, 4: 9}  # 36 -> 18 -> 9 cells
    assert set(level1.loc[level1["epochs"] == 4, "status"]) == {"ok"}
    assert set(level1.loc[level1["epochs"] < 4, "status"]) == {"stopped"}
    at1 = evaluator.evaluate(level1["cell"].tolist(), (1, None)).set_index("cell")["val_acc"]
    promoted = level1.loc[level1["epochs"] > 1, "cell"]
    assert at1[promoted].min() >= at1.drop(promoted).max()  # the best half at epoch 1 went on
    full = evaluator.evaluate(level1["cell"].tolist()).set_index("cell")["val_acc"]
    done = level1[level1["epochs"] == 4].set_index("cell")["val_acc"]
    assert done.tolist() == full[done.index].tolist()  # a promoted cell ends as full training would


def test_early_stopping_simulation_counts_epochs(table) -> None:
    strategies = ["pnas:xgb", "pnas-es:1+2:0.5::xgb"]
    runs = [simulate(table, strategies, [1], beam_size=4) for _ in range(2)]
    for name in strategies:
        np.testing.assert_array_equal(runs[0].accuracy[name], runs[1].accuracy[name])
        np.testing.assert_array_equal(runs[0].epochs[name], runs[1].epochs[name])
    sim = runs[0]
    assert (sim.epochs["pnas:xgb"] == 4).all()
    assert sim.epochs["pnas-es:1+2:0.5::xgb"].sum() == 72 + 8  # level 1: 18x1 + 9x2 + 9x4; level 2: 2 + 2 + 4
    assert np.isfinite(sim.accuracy["pnas-es:1+2:0.5::xgb"]).sum() == 10
    row = summarize(sim, table).set_index("strategy")
    assert row.loc["pnas-es:1+2:0.5::xgb", "epochs_mean"] == 80 and row.loc["pnas:xgb", "epochs_mean"] == 160
    assert row.loc["pnas-es:1+2:0.5::xgb", "full_models"] == 10
    with pytest.raises(PnasError, match="pnas-es takes"):
        simulate(table, ["pnas-es:1"], [0], beam_size=2)
