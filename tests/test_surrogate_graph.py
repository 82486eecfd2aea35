"""The graph encoder (``gnn``), the rho-weighted families (``weighted``) and the cost features:
invariance to block order, determinism, save/load, the fast child path, the weights rule."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from synthetic import op_accuracy

from pnas_core.errors import PnasError
from pnas_core.space.cells import Space, canonical_tokens, insertion_positions, parse, unique_rows
from pnas_core.surrogate import Predictor, SurrogateSettings, make_predictor
from pnas_core.surrogate.cost_features import cost_features
from pnas_core.surrogate.weighted import heldout_rho, size_folds, weights_from_rho

TINY = SurrogateSettings(
    ensemble_size=2, embed_dim=8, hidden_dim=16, epochs=3, xgb={"n_estimators": 20, "n_jobs": 1}
)
COST = SurrogateSettings(**{**TINY.to_dict(), "cost_features": True})


@pytest.fixture(scope="module")
def data():
    space, rng = Space(), np.random.default_rng(0)
    one, two = space.one_block_tokens(), space.sample_tokens(2, 100, rng)
    return {
        "train": [*one, *two],
        "y": np.concatenate([op_accuracy(one, rng), op_accuracy(two, rng)]),
        "three": space.sample_tokens(3, 40, rng),
        "space": space,
    }


@pytest.fixture(scope="module")
def gnn(data):
    return make_predictor("gnn", COST).fit(data["train"], data["y"])


def block_orders(tokens: np.ndarray) -> list[np.ndarray]:
    """Every valid block order of a cell (references renumbered), each block's halves swapped."""
    blocks = tokens.reshape(-1, 4)
    out = []
    for order in itertools.permutations(range(len(blocks))):
        position = {old: new for new, old in enumerate(order)}
        if any(
            blocks[j, k] >= 2 and position[blocks[j, k] - 2] >= position[j] for j in order for k in (0, 1)
        ):
            continue
        rows = []
        for j in order:
            in1, in2 = (x if x < 2 else position[x - 2] + 2 for x in blocks[j, :2])
            rows.append([in2, in1, blocks[j, 3], blocks[j, 2]])
        out.append(np.array(rows, np.int8).ravel())
    return out


def test_gnn_prediction_is_the_same_for_every_block_order(gnn):
    cells = [
        "0:sep3x3,1:identity;0:sep5x5,0:max3x3;1:sep3x3,1:sep5x5;1:sep7x7,1:max3x3;1:max3x3,4:sep3x3",
        "0:conv7x1,1:dil3x3;0:avg3x3,2:sep3x3;1:max3x3,2:identity;3:sep7x7,4:sep5x5",
    ]
    for text in cells:
        orders = block_orders(parse(text).tokens())
        assert len(orders) >= 2
        mean, std = gnn.predict(np.stack(orders))
        np.testing.assert_allclose(mean, mean[0], atol=1e-6, rtol=0)
        np.testing.assert_allclose(std, std[0], atol=1e-6, rtol=0)
        assert len({canonical_tokens(o[None]).tobytes() for o in orders}) == 1


@pytest.mark.parametrize("b", [1, 3])
def test_gnn_fast_child_scoring_equals_scoring_each_child(gnn, data, b):
    space = data["space"]
    parents = space.sample_tokens(b, 4, np.random.default_rng(b))
    children, _ = space.expand(parents)
    fast = gnn.predict_children(parents, space.block_table(b + 1))
    slow = gnn.predict(children)
    np.testing.assert_allclose(fast[0], slow[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(fast[1], slow[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("name", "settings"), [("gnn", TINY), ("gnn", COST), ("xgb", COST)])
def test_deterministic_under_seed_and_save_load(data, tmp_path, name, settings):
    train, y = data["train"][:80], data["y"][:80]
    a = make_predictor(name, settings).fit(train, y)
    b = make_predictor(name, settings).fit(train, y)
    np.testing.assert_array_equal(a.predict(data["three"])[0], b.predict(data["three"])[0])
    other = SurrogateSettings(**{**settings.to_dict(), "seed": 1})
    c = make_predictor(name, other).fit(train, y)
    assert not np.array_equal(a.predict(data["three"])[0], c.predict(data["three"])[0])
    a.save(tmp_path / name)
    loaded = Predictor.load(tmp_path / name)
    for x, z in zip(a.predict(data["three"]), loaded.predict(data["three"]), strict=True):
        np.testing.assert_array_equal(x, z)


def test_cost_features_of_pnasnet5():
    text = "0:sep3x3,1:identity;0:sep5x5,0:max3x3;1:sep3x3,1:sep5x5;1:sep7x7,1:max3x3;1:max3x3,4:sep3x3"
    # six separable convs (a = 2 each; c = 22, 54, 22, 54, 102, 22), both cell inputs read
    np.testing.assert_array_equal(cost_features(parse(text).tokens()[None]), [[12, 276, 2, 6]])
    assert cost_features(parse("1:identity,1:max3x3").tokens()[None]).tolist() == [[0, 0, 1, 0]]


def test_weights_rule():
    np.testing.assert_allclose(weights_from_rho([0.6, 0.2, -0.5]), [0.75, 0.25, 0.0])
    np.testing.assert_allclose(weights_from_rho([np.nan, 0.5]), [0.0, 1.0])
    np.testing.assert_allclose(weights_from_rho([-0.1, np.nan]), [0.5, 0.5])
    sizes = np.array([1] * 5 + [2] * 10)
    y = np.arange(15.0)
    pred = np.r_[np.arange(5.0), -np.arange(10.0)]  # rho +1 on the 5, -1 on the 10
    assert heldout_rho(pred, y, sizes) == pytest.approx((5 - 10) / 15)
    fold = size_folds(sizes, 4, seed=0)
    assert np.array_equal(fold, size_folds(sizes, 4, seed=0))
    for size in (1, 2):  # every fold holds every size, sizes dealt evenly
        counts = np.bincount(fold[sizes == size], minlength=4)
        assert counts.max() - counts.min() <= 1


def assert_insertions_match(predictor, space: Space, b: int) -> None:
    """The beam's insertion path equals scoring every canonical child from scratch (1e-5)."""
    parents = unique_rows(canonical_tokens(space.sample_tokens(b, 5, np.random.default_rng(20 + b))))
    children, parent_index, _ = space.canonical_children(parents)
    positions = insertion_positions(children, parents[parent_index])
    ok = positions >= 0
    assert len(np.unique(positions[ok])) > 1
    blocks = children.reshape(len(children), b + 1, 4)[ok, positions[ok]]
    fast = predictor.predict_insertions(parents, blocks, positions[ok], parent_index[ok])
    slow = predictor.predict(children[ok])
    np.testing.assert_allclose(fast[0], slow[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(fast[1], slow[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("b", [1, 3])
def test_gnn_insertion_scoring_equals_scoring_each_child(gnn, data, b):
    assert_insertions_match(gnn, data["space"], b)


def test_weighted_combines_families_and_round_trips(data, tmp_path):
    settings = SurrogateSettings(**{**TINY.to_dict(), "weighted_of": "mlp+xgb", "weighted_folds": 2})
    w = make_predictor("weighted", settings).fit(data["train"][:80], data["y"][:80])
    weights = np.array([w.meta["weights"][n] for n in ("mlp", "xgb")])
    assert weights.sum() == pytest.approx(1.0) and np.all(weights >= 0)
    parts = [w.members[n].predict(data["three"]) for n in ("mlp", "xgb")]
    mean, std = w.predict(data["three"])
    expect = weights[0] * parts[0][0] + weights[1] * parts[1][0]
    np.testing.assert_allclose(mean, expect, atol=1e-6)
    var = sum(
        wt * (s.astype(np.float64) ** 2 + (m - expect) ** 2)
        for wt, (m, s) in zip(weights, parts, strict=True)
    )
    np.testing.assert_allclose(std, np.sqrt(var), atol=1e-6)
    space = data["space"]
    parents = space.sample_tokens(2, 3, np.random.default_rng(5))
    fast = w.predict_children(parents, space.block_table(3))
    np.testing.assert_allclose(fast[0], w.predict(space.expand(parents)[0])[0], atol=1e-5)
    assert_insertions_match(w, space, 2)
    w.save(tmp_path / "w")
    loaded = Predictor.load(tmp_path / "w")
    np.testing.assert_array_equal(loaded.predict(data["three"])[0], mean)


def test_weighted_rejects_bad_family_lists():
    for bad in ("rnn+weighted", "rnn+rnn", "rnn+gp", "rnn,mlp", "mlp+xgb+mlp", "rnn\n"):
        with pytest.raises(PnasError, match="weighted_of"):
            SurrogateSettings(weighted_of=bad)
    assert make_predictor("weighted", SurrogateSettings(weighted_of="gnn+xgb")).families == ["gnn", "xgb"]


def test_simulate_and_bench_quality_take_the_new_options(tmp_path):
    from pnas_core.search.benchmark import load_table
    from pnas_core.search.simulate import simulate

    table = load_table("digits_b2")
    light = SurrogateSettings(**{**TINY.to_dict(), "weighted_of": "xgb+gnn", "weighted_folds": 2})
    strategies = ["pnas:gnn", "pnas:weighted", "pnas:mean:xgb+gnn"]
    sim = simulate(table, strategies, [0], beam_size=2, surrogate=light)
    assert all(len(sim.cells[s][0]) == len(sim.cells["pnas:gnn"][0]) for s in strategies)
    assert sim.fit_count == {"gnn": 1, "weighted": 1, "xgb": 1}  # gnn's fit shared by two strategies
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps(TINY.to_dict()))
    cmd = [sys.executable, "-m", "pnas_core", "bench-quality", "--repeats", "1", "--settings", str(settings)]
    out = tmp_path / "q.parquet"
    proc = subprocess.run(
        [*cmd, "--predictors", "gnn", "xgb", "--train-size", "6", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert set(pd.read_parquet(out)["predictor"]) == {"gnn", "xgb", "mean"}
