"""``pnas simulate``: strategy texts parse (bad ones are refused naming the text), strategies replayed
on the shipped table are deterministic for a seed, budgets hold, and the strategy table's numbers mean
what they say."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pnas_core.cli import main
from pnas_core.errors import PnasError
from pnas_core.names import DEFAULT_PREDICTORS
from pnas_core.search.benchmark import load_table
from pnas_core.search.progressive import table_costs
from pnas_core.search.selection import Selection, load_selection
from pnas_core.search.simulate import Simulation, curves, simulate, summarize
from pnas_core.search.strategies import (
    PnasStrategy,
    RandomStrategy,
    check_strategies,
    parse_strategy,
)
from pnas_core.space.cells import parse

ALL = DEFAULT_PREDICTORS
BUDGET = 48_000  # about the median params of the shipped table's two-block cells
SELECTION_STRATEGIES = [
    "pnas:mean",
    "pnas:ucb@kappa=0",
    "pnas:ucb@kappa=2",
    f"pnas:mean@max_params={BUDGET}",
    "pnas:ucb:mlp+xgb@max_mult_adds=490000,pareto=params",
    "pnas:mean@pareto=mult_adds",
    f"random@max_params={BUDGET}",
    "random",
]


@pytest.fixture(scope="module")
def table():
    return load_table("digits_b2")


@pytest.fixture(scope="module")
def selection_runs(table) -> list[Simulation]:
    """Every kind of selection, one seed, K = 4, twice (the PNAS strategies share one fit per run)."""
    return [simulate(table, SELECTION_STRATEGIES, [3], beam_size=4) for _ in range(2)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("pnas", PnasStrategy(ALL, Selection())),
        ("pnas:ucb@kappa=2.5", PnasStrategy(ALL, Selection("ucb", kappa=2.5))),
        ("pnas:mlp@max_params=9000", PnasStrategy(("mlp",), Selection("mlp", max_params=9000))),
        (
            "pnas:ucb:rnn+xgb@kappa=0,max_mult_adds=5_000,pareto=mult_adds",
            PnasStrategy(
                ("rnn", "xgb"),
                Selection("ucb", kappa=0.0, max_mult_adds=5000, pareto=True, pareto_cost="mult_adds"),
            ),
        ),
        ("pnas:mean@pareto=params", PnasStrategy(ALL, Selection(pareto=True))),
        ("random", RandomStrategy()),
        ("random@max_mult_adds=7,max_params=8", RandomStrategy(max_params=8, max_mult_adds=7)),
    ],
)
def test_strategy_texts_parse(text, expected) -> None:
    assert parse_strategy(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("pnas:mean@kappa=2", "kappa weighs the spread of select-by ucb, not mean"),
        ("pnas:ucb@kappa=-1", "kappa must be a finite number >= 0"),
        ("pnas:ucb@kappa=big", "kappa must be a number"),
        ("pnas@max_params=0", "max_params must be a positive integer"),
        ("random@max_mult_adds=1e5", "max_mult_adds must be a positive integer"),
        ("pnas@pareto=flops", "pareto takes the cost to trade against: params or mult_adds"),
        ("pnas@pareto", "KEY=VALUE"),
        ("pnas@", "KEY=VALUE"),
        ("pnas@max_params=5,max_params=6", "distinct KEY=VALUE"),
        ("random@kappa=1", "KEY one of max_params, max_mult_adds; got 'kappa=1'"),
        ("random:mean", "random takes no arguments"),
        ("pnas:best", "cannot select by 'best'"),
        ("pnas:rnn:mlp", "include the one it selects by"),
    ],
)
def test_bad_strategy_texts_are_refused_naming_the_text(text, message) -> None:
    with pytest.raises(PnasError, match=re.escape(f"strategy {text!r}")) as err:
        check_strategies([text])
    assert message in str(err.value)


def test_selections_are_deterministic_for_a_seed(selection_runs) -> None:
    first, second = selection_runs
    assert first.cells == second.cells
    for name in SELECTION_STRATEGIES:
        np.testing.assert_array_equal(first.accuracy[name], second.accuracy[name])
    assert first.cells["pnas:ucb@kappa=0"] == first.cells["pnas:mean"]  # κ = 0: UCB is the mean
    assert first.cells["pnas:ucb@kappa=2"] != first.cells["pnas:mean"]
    assert first.cells["pnas:mean@pareto=mult_adds"] != first.cells["pnas:mean"]


def test_budgeted_strategies_never_train_a_b_block_cell_over_budget(table, selection_runs) -> None:
    cost = table.cells.set_index("cell")
    limits = {
        f"pnas:mean@max_params={BUDGET}": ("params", BUDGET),
        f"random@max_params={BUDGET}": ("params", BUDGET),
        "pnas:ucb:mlp+xgb@max_mult_adds=490000,pareto=params": ("mult_adds", 490_000),
    }
    for name, (col, limit) in limits.items():
        (cells,) = selection_runs[0].cells[name]
        two = [c for c in cells if cost.loc[c, "num_blocks"] == 2]
        assert len(two) == (4 if name.startswith("pnas") else len(cells))
        assert cost.loc[two, col].max() <= limit, name
    unbudgeted = [c for c in selection_runs[0].cells["random"][0] if cost.loc[c, "params"] > BUDGET]
    assert unbudgeted  # the budget binds: plain random search draws cells above it
    summary = summarize(selection_runs[0], table).set_index("strategy")
    budgeted = summary.loc[f"random@max_params={BUDGET}"]
    assert budgeted["params_trained"] <= BUDGET
    assert budgeted["params_trained"] < summary.loc["random", "params_trained"]
    # a budgeted PNAS is compared with random search under the same budget, if simulated
    assert summary.loc[f"pnas:mean@max_params={BUDGET}", "baseline"] == f"random@max_params={BUDGET}"
    assert summary.loc["pnas:ucb:mlp+xgb@max_mult_adds=490000,pareto=params", "baseline"] == "random"
    assert summary.loc["pnas:ucb@kappa=2", "baseline"] == "random"


def test_found_best_counts_the_best_cell_within_the_budget(table) -> None:
    mean_acc = np.nanmean(table.accuracy, axis=1)
    cheap = (table.cells["params"] <= BUDGET).to_numpy()
    best_cheap = table.cells["cell"][cheap].iloc[int(np.nanargmax(mean_acc[cheap]))]
    cells = {f"random@max_params={BUDGET}": [[best_cheap]], "random": [[best_cheap]]}
    acc = {name: np.array([[0.9]]) for name in cells}
    sim = Simulation(acc, cells, [0], {}, {}, {}, {f"random@max_params={BUDGET}": {"params": BUDGET}})
    summary = summarize(sim, table).set_index("strategy")
    assert summary["found_best"].tolist() == [1.0, 0.0]  # the table's best cells exceed the budget


def test_table_costs_are_the_tables(table) -> None:
    costs = table_costs(table)
    for b in (1, 2):
        cells = table.cells[table.cells["num_blocks"] == b]
        got = costs(np.stack([parse(c).tokens() for c in cells["cell"]]))
        for col in ("params", "mult_adds"):
            np.testing.assert_array_equal(got[col], cells[col].to_numpy())


def test_a_budget_no_cell_meets_names_the_strategy(table) -> None:
    for text in ("pnas@max_params=10", "random@max_params=10"):
        with pytest.raises(PnasError, match=re.escape(f"strategy {text!r}, seed 0: no ")):
            simulate(table, [text], [0], beam_size=2)


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
    x, y = table.cells["cell"].iloc[[0, 1]]
    cells = {"fast": [[best_cell, x], [x]], "random": [[x], [y]]}
    sim = Simulation(acc, cells, [0, 1], {}, {}, {})
    row = summarize(sim, table, top_k=2).set_index("strategy")
    assert row.loc["random", "best_mean"] == pytest.approx(0.85)
    assert row.loc["fast", "best_mean"] == pytest.approx(0.9)
    assert row.loc["fast", "best_lo"] == row.loc["fast", "best_hi"] == pytest.approx(0.9)  # no spread
    assert row.loc["random", "best_lo"] < 0.85 < row.loc["random", "best_hi"]
    assert row.loc["fast", "models_to_baseline_best"] == 2  # mean best after 2 models: (0.9 + 0.8) / 2
    assert row.loc["random", "models_to_baseline_best"] == 4
    assert row.loc["fast", "ratio_best"] == pytest.approx(0.5)
    assert row.loc["fast", "found_best"] == 0.5 and row.loc["random", "found_best"] == 0
    params = table.cells.set_index("cell")["params"]
    assert row.loc["fast", "params_best"] == params[x]  # seed 0 observed x (0.9) above best_cell (0.8)
    assert row.loc["fast", "params_trained"] == pytest.approx(
        ((params[best_cell] + params[x]) / 2 + params[x]) / 2
    )
    assert row.loc["random", "mult_adds_trained"] == row.loc["random", "mult_adds_best"]
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


def test_cli_writes_the_strategy_table_and_figure(tmp_path) -> None:
    cmd = [sys.executable, "-m", "pnas_core", "simulate", "--seeds", "2", "--beam-size", "4"]
    strategies = ["pnas:xgb", "evolution@population=8,sample=3", "local", "random", "random@max_params=48000"]
    outputs = []
    for out in (tmp_path / "a", tmp_path / "b"):
        proc = subprocess.run(
            [*cmd, "--strategies", *strategies, "--out-dir", str(out)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    stdout = outputs[0]
    assert "pnas:xgb" in stdout and "random@max_params=48000" in stdout
    assert "predictor fitting: xgb" in stdout and "params trained / best" in stdout
    # the paired differences against every baseline, and the equal-compute readings
    assert "best at equal compute" in stdout and "Wilcoxon" in stdout
    for base in strategies[1:]:
        assert re.search(rf"^pnas:xgb +{re.escape(base)} +best +M models ", stdout, re.M)
        assert re.search(rf"^pnas:xgb +{re.escape(base)} +top-5 mean +equal compute ", stdout, re.M)
    summary = pd.read_csv(tmp_path / "a" / "strategies.csv")
    assert summary["strategy"].tolist() == strategies
    assert {"best_ec_mean", "topk_ec_lo", "cost_mean", "seconds_mean"} <= set(summary.columns)
    budgeted = summary.set_index("strategy").loc["random@max_params=48000"]
    assert max(budgeted["params_trained"], budgeted["params_best"]) <= 48_000
    paired = pd.read_csv(tmp_path / "a" / "paired.csv")
    assert set(paired["baseline"]) == set(strategies[1:]) and set(paired["strategy"]) == {"pnas:xgb"}
    # deterministic for a seed: the same tables twice
    for name in ("strategies.csv", "paired.csv", "reach.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "simulation.png").stat().st_size > 0
    bad = subprocess.run(
        [*cmd, "--strategies", "nope", "--out-dir", str(tmp_path / "c")], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "unknown strategy 'nope'" in bad.stderr


def test_early_stopping_on_the_table_follows_the_rungs(table) -> None:
    from pnas_core.search.early_stop import EarlyStop
    from pnas_core.search.progressive import TableEvaluator, run_search
    from pnas_core.search.simulate import SIMULATION_SURROGATE

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


def test_a_selection_file_is_the_pnas_strategies_selection(table, tmp_path, capsys) -> None:
    # what a run's settings/selection.json holds: its selection replaces the pnas texts' options
    path = tmp_path / "selection.json"
    path.write_text(f'{{"select_by": "ucb", "ucb_kappa": 2, "max_params": {BUDGET}}}')
    selection = load_selection(path)
    by_file = simulate(table, ["pnas:ucb", "random"], [3], beam_size=4, selection=selection)
    by_text = simulate(table, [f"pnas:ucb@kappa=2,max_params={BUDGET}", "random"], [3], beam_size=4)
    assert by_file.cells["pnas:ucb"] == by_text.cells[f"pnas:ucb@kappa=2,max_params={BUDGET}"]
    assert by_file.cells["random"] == by_text.cells["random"]  # a baseline keeps its own text
    # the command line: a pnas text that selects otherwise, or sets options, is one line naming it
    for strategies, message in (
        (["pnas:mean"], "it selects by mean, the selection settings file by ucb"),
        (["pnas:ucb@kappa=1"], "the selection settings file sets the selection: give no @options"),
    ):
        argv = ["simulate", "--selection", str(path), "--strategies", *strategies]
        assert main([*argv, "--out-dir", str(tmp_path / "out")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything is written
