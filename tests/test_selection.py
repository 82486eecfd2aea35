"""Selection: UCB score and pooled spread, hard budgets, Pareto fronts against brute force, and the
candidates table, summary and accuracy-vs-size figure saying what picked each cell."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from pnas_core.errors import PnasError
from pnas_core.figures.pareto import budget, pareto_figure, pareto_table
from pnas_core.search import beam
from pnas_core.search.selection import (
    SELECTION_KEYS,
    Selection,
    crowding_distance,
    load_selection,
    pareto_fronts,
    pick,
    pooled_spread,
    score_and_spread,
)
from pnas_core.search.summary import selection_note, summarize
from pnas_core.space.cells import Space, cell_id, tokens_to_texts

REPO = Path(__file__).resolve().parents[1]


def scored_table(n: int, seed: int = 0, cost_levels: int = 40) -> pa.Table:
    """A costed scored table of n distinct 2-block cells with rnn, mlp (ensembles) and xgb predictions.

    Scores and costs take few distinct values, so ties of each kind occur."""
    rng = np.random.default_rng(seed)
    children, _ = Space().expand(Space().one_block_tokens()[:4])
    texts = tokens_to_texts(children[rng.choice(len(children), n, replace=False)])
    preds = {p: np.round(rng.uniform(0.5, 0.9, n), 2).astype(np.float32) for p in ("rnn", "mlp", "xgb")}
    stds = {
        "rnn": rng.uniform(0, 0.05, n).astype(np.float32),
        "mlp": rng.uniform(0, 0.05, n).astype(np.float32),
        "xgb": np.zeros(n, np.float32),
    }
    columns = {
        "cell": texts,
        "cell_id": [cell_id(t) for t in texts],
        "num_blocks": np.full(n, 2, np.int32),
        "parent": [t.split(";")[0] for t in texts],
    }
    for p in preds:
        columns[f"pred_{p}"], columns[f"std_{p}"] = preds[p], stds[p]
    columns["pred_mean"] = np.mean(list(preds.values()), axis=0, dtype=np.float32)
    columns["params"] = 1000 * rng.integers(1, cost_levels + 1, n)
    columns["mult_adds"] = 10 * columns["params"] + rng.integers(0, 3, n)
    return pa.Table.from_pydict(columns, schema=beam.scored_schema(["rnn", "mlp", "xgb"], costed=True))


def brute_force_fronts(score: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Textbook non-dominated sorting, O(n²) per front."""
    front = np.full(len(score), -1)
    left, level = set(range(len(score))), 0
    while left:
        current = {
            i
            for i in left
            if not any(
                cost[j] <= cost[i] and score[j] >= score[i] and (cost[j] < cost[i] or score[j] > score[i])
                for j in left
            )
        }
        front[list(current)] = level
        left -= current
        level += 1
    return front


def test_pooled_spread_is_the_std_of_all_members_pooled() -> None:
    rng = np.random.default_rng(0)
    members = [rng.normal(0.7, 0.03, (5, 50)), rng.normal(0.75, 0.01, (5, 50)), np.full((5, 50), 0.72)]
    means = [m.mean(0) for m in members]
    stds = [m.std(0) for m in members]
    pooled = np.concatenate(members).std(0)  # equal member counts: each family weighs the same
    np.testing.assert_allclose(pooled_spread(means, stds), pooled, rtol=1e-5)


def test_ucb_adds_kappa_times_the_spread() -> None:
    table = scored_table(60)
    mean, spread = score_and_spread(table, "mean")
    ucb, same = score_and_spread(table, "ucb", kappa=2.0)
    np.testing.assert_array_equal(spread, same)
    np.testing.assert_allclose(ucb, mean + 2.0 * spread, rtol=1e-6)
    assert (spread > 0).all()
    rnn, rnn_spread = score_and_spread(table, "rnn")
    np.testing.assert_array_equal(rnn, table.column("pred_rnn").to_numpy())
    np.testing.assert_array_equal(rnn_spread, table.column("std_rnn").to_numpy())
    picks = beam.select(table, 10, Selection(by="ucb", kappa=2.0)).to_pandas()
    expected = np.sort(ucb)[::-1][:10]
    np.testing.assert_array_equal(picks["score"], expected)
    assert (picks["select_by"] == "ucb").all() and (picks["ucb_kappa"] == 2.0).all()
    np.testing.assert_allclose(picks["score"], picks["pred_mean"] + 2.0 * picks["spread"], rtol=1e-6)
    zero = beam.select(table, 10, Selection(by="ucb", kappa=0.0)).column("cell")
    assert zero.to_pylist() == beam.select(table, 10, "mean").column("cell").to_pylist()


def test_budgets_are_hard_and_an_unmeetable_one_names_the_cheapest_child() -> None:
    table = scored_table(200)
    params = table.column("params").to_numpy()
    limit = int(np.quantile(params, 0.3))
    picks = beam.select(table, 25, Selection(by="ucb", max_params=limit)).to_pandas()
    assert len(picks) == 25 and (picks["params"] <= limit).all() and (picks["max_params"] == limit).all()
    within = table.filter(pa.compute.less_equal(table.column("params"), limit))
    assert picks["cell"].tolist() == beam.select(within, 25, "ucb").column("cell").to_pylist()
    both = beam.select(table, 500, Selection(max_params=limit, max_mult_adds=10 * limit)).to_pandas()
    assert len(both) == ((params <= limit) & (table.column("mult_adds").to_numpy() <= 10 * limit)).sum()
    cheapest = int(params.min())
    with pytest.raises(PnasError, match=f"max_params {cheapest - 1:,}: the cheapest has {cheapest:,} params"):
        beam.select(table, 5, Selection(max_params=cheapest - 1))


def test_pareto_fronts_match_brute_force_with_ties() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(1, 60))
        score = rng.integers(0, 6, n).astype(np.float32) / 10
        cost = rng.integers(0, 6, n).astype(np.int64)
        np.testing.assert_array_equal(pareto_fronts(score, cost), brute_force_fronts(score, cost))
        partial = pareto_fronts(score, cost, need=3)
        full = pareto_fronts(score, cost)
        assert (partial >= 0).sum() >= min(3, n)
        np.testing.assert_array_equal(partial[partial >= 0], full[partial >= 0])


def test_crowding_distance_keeps_the_ends_of_a_front() -> None:
    score = np.array([0.5, 0.6, 0.61, 0.9])
    cost = np.array([1, 2, 3, 10])
    d = crowding_distance(score, cost)
    assert np.isinf(d[[0, 3]]).all() and np.isfinite(d[[1, 2]]).all()
    assert d[1] == pytest.approx((0.61 - 0.5) / 0.4 + (3 - 1) / 9)


def test_pareto_picks_fill_from_successive_fronts_deterministically() -> None:
    table = scored_table(300)
    k = 20
    picks = beam.select(table, k, Selection(pareto=True, pareto_cost="params")).to_pandas()
    assert len(picks) == k and picks["cell"].is_unique and (picks["pareto_cost"] == "params").all()
    fronts = brute_force_fronts(table.column("pred_mean").to_numpy(), table.column("params").to_numpy())
    by_cell = dict(zip(table.column("cell").to_pylist(), fronts, strict=True))
    assert picks["front"].tolist() == [by_cell[c] for c in picks["cell"]]
    last = picks["front"].max()
    assert all((fronts == f).sum() == (picks["front"] == f).sum() for f in range(last))  # whole fronts
    assert (np.diff(picks["front"]) >= 0).all()  # rank follows the fronts
    shuffled = table.take(pa.array(np.random.default_rng(1).permutation(table.num_rows)))
    again = beam.select(shuffled, k, Selection(pareto=True, pareto_cost="params")).to_pandas()
    assert again["cell"].tolist() == picks["cell"].tolist()
    cheap = beam.select(table, k, Selection(pareto=True, pareto_cost="mult_adds", max_params=20_000))
    assert (cheap.column("params").to_numpy() <= 20_000).all()


def test_selection_errors_name_the_problem() -> None:
    with pytest.raises(PnasError, match="cannot select by 'gp'"):
        Selection(by="gp")
    with pytest.raises(PnasError, match="kappa"):
        Selection(kappa=-1.0)
    with pytest.raises(PnasError, match="max_params"):
        Selection(max_params=0)
    with pytest.raises(PnasError, match="pareto_cost"):
        Selection(pareto_cost="latency")
    # an empty text is a value, refused as the config check refuses it; only a missing or null key
    # takes the default (the dry run and the jobs once disagreed on pareto_cost: "")
    for key, message in (("pareto_cost", "pareto_cost must be"), ("select_by", "cannot select by ''")):
        with pytest.raises(PnasError, match=message):
            Selection.from_mapping({key: ""})
    uncosted = scored_table(10).drop_columns(["params", "mult_adds"])
    with pytest.raises(PnasError, match=r"no params column.*expand-score --settings"):
        pick(uncosted, 3, Selection(pareto=True))
    assert pick(uncosted, 3, Selection(by="ucb")).rows.shape == (3,)  # costs only when asked for


def test_summary_and_figure_show_the_budget_and_the_front(tmp_path) -> None:
    table = scored_table(200)
    limit = int(np.quantile(table.column("params").to_numpy(), 0.5))
    level2 = beam.select(table, 12, Selection(by="ucb", kappa=0.5, max_params=limit, pareto=True))
    level1 = beam.enumerate_level1(Space.from_names(["sep3x3", "max3x3"]))
    paths = []
    for level, cand in enumerate((level1, level2), start=1):
        cells = cand.column("cell").to_pylist()
        records = pd.DataFrame(
            {"cell": cells, "val_acc": np.linspace(0.5, 0.9, len(cells)), "status": "ok"}
            | {"params": np.arange(len(cells)) + 10, "mult_adds": np.arange(len(cells)) + 100}
        )
        beam.write_table(cand, tmp_path / f"c{level}.parquet")
        records.to_parquet(tmp_path / f"t{level}.parquet")
        paths.append((tmp_path / f"c{level}.parquet", tmp_path / f"t{level}.parquet"))
    summary = summarize([c for c, _ in paths], [t for _, t in paths])
    later = summary[summary["level"] == 2]
    assert (later["max_params"] == limit).all() and later["front"].notna().all()
    assert summary.loc[summary["level"] == 1, "select_by"].isna().all()
    assert (later["params"].to_numpy() == np.arange(12) + 10).all()  # training's measured cost is kept
    on_first = int((later["front"] == 0).sum())
    assert selection_note(summary) == (
        f"level 2: 12 cells by ucb (kappa 0.5) within max_params {limit:,}, "
        f"Pareto fronts against params ({on_first} of 12 from the first front)"
    )
    assert budget(summary, "params") == limit and budget(summary, "mult_adds") is None
    figure_table = pareto_table(summary, None, "params")
    assert (figure_table["predicted_front"] == 0).sum() == on_first
    fig = pareto_figure(figure_table, "params", limit)
    ax = fig.axes[0]
    assert [tuple(line.get_xdata()) for line in ax.lines if line.get_linestyle() == "--"] == [(limit, limit)]
    legend = fig.legends[0]  # under the axes, outside the data
    assert any(f"budget: max_params {limit:,}" in t.get_text() for t in legend.get_texts())


def test_selection_from_the_config_or_a_candidates_row() -> None:
    search = {"select_by": "ucb", "ucb_kappa": 0.5, "max_params": 900, "max_mult_adds": None, "pareto": False}
    assert Selection.from_mapping(search) == Selection(by="ucb", kappa=0.5, max_params=900)
    assert Selection.from_mapping({}) == Selection()
    row = (
        beam.select(scored_table(50), 3, Selection(pareto=True, pareto_cost="mult_adds")).to_pandas().iloc[0]
    )
    assert Selection.from_mapping(row.to_dict()) == Selection(pareto=True, pareto_cost="mult_adds")


def test_one_reader_for_the_config_the_settings_file_and_the_candidates(tmp_path) -> None:
    """The workflow writes the config's selection keys to settings/selection.json; pnas select reads the
    file back, and its candidates' columns read back the same selection (the one reader, from_mapping)."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    search = {
        **config["search"],
        "select_by": "ucb",
        "ucb_kappa": 0.5,
        "max_params": 10**6,
        "pareto": True,
        "pareto_cost": "params",
    }
    written = tmp_path / "selection.json"
    written.write_text(json.dumps({key: search[key] for key in SELECTION_KEYS.values()}))
    selection = load_selection(written)
    assert selection == Selection.from_mapping(search) == Selection("ucb", 0.5, 10**6, None, True, "params")
    assert Selection.from_mapping(selection.to_mapping()) == selection
    row = beam.select(scored_table(50), 3, selection).to_pandas().iloc[0]
    assert Selection.from_mapping(row.to_dict()) == selection


def test_the_workflow_writes_the_selection_keys() -> None:
    """rules/common.smk spells the keys it writes (no pnas_core import at parse time): the library's."""
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    spelled = re.search(r"^SELECTION_KEYS = (\(.*\))$", common, re.M)
    assert spelled and ast.literal_eval(spelled[1]) == tuple(SELECTION_KEYS.values())
