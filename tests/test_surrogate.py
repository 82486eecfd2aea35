"""Predictors: fit a known ranking, save/load, determinism, fast child scoring, settings errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr
from synthetic import op_accuracy

from pnas_core.errors import PnasError
from pnas_core.space.cells import (
    Space,
    canonical_tokens,
    insert_blocks,
    insertion_positions,
    tokens_to_texts,
    unique_rows,
)
from pnas_core.surrogate import Predictor, SurrogateSettings, make_predictor
from pnas_core.surrogate.base import group_by_size

FAST = SurrogateSettings(
    ensemble_size=3, embed_dim=16, hidden_dim=32, epochs=20, batch_size=32, xgb={"n_estimators": 150}
)


@pytest.fixture(scope="module")
def data():
    space, rng = Space(), np.random.default_rng(0)
    one = space.one_block_tokens()
    two = space.sample_tokens(2, 400, rng)
    three = space.sample_tokens(3, 200, rng)
    train = [*one, *two[:250]]
    y = np.concatenate([op_accuracy(one, rng), op_accuracy(two[:250], rng)])
    return {
        "train": train,
        "y": y,
        "held": two[250:],
        "y_held": op_accuracy(two[250:], rng),
        "three": three,
        "y_three": op_accuracy(three, rng),
        "space": space,
    }


@pytest.fixture(scope="module")
def fitted(data):
    names = ("rnn", "mlp", "xgb")  # gnn and weighted: tests/test_surrogate_graph.py
    return {name: make_predictor(name, FAST).fit(data["train"], data["y"]) for name in names}


@pytest.mark.parametrize("name", ["rnn", "mlp", "xgb"])
def test_learns_known_ranking_on_heldout_and_next_size(fitted, data, name):
    mean, std = fitted[name].predict(data["held"])
    assert mean.dtype == np.float32 and mean.shape == (len(data["held"]),)
    assert spearmanr(mean, data["y_held"]).statistic >= 0.8
    assert spearmanr(fitted[name].predict(data["three"])[0], data["y_three"]).statistic >= 0.6
    if name == "xgb":
        assert np.all(std == 0)
    else:
        assert np.all(std >= 0) and std.max() > 0


@pytest.mark.parametrize("name", ["rnn", "mlp", "xgb"])
def test_accepts_texts_cells_and_mixed_sizes(fitted, data, name):
    mixed = [data["held"][0], data["three"][0], data["held"][1]]
    texts = [tokens_to_texts(r[None])[0] for r in mixed]
    by_tokens, by_texts = fitted[name].predict(mixed)[0], fitted[name].predict(texts)[0]
    np.testing.assert_array_equal(by_tokens, by_texts)
    np.testing.assert_array_equal(by_tokens[[0, 2]], fitted[name].predict(data["held"][:2])[0])


@pytest.mark.parametrize("name", ["rnn", "mlp", "xgb"])
def test_save_load_round_trip(fitted, data, tmp_path, name):
    fitted[name].save(tmp_path / name)
    config = json.loads((tmp_path / name / "config.json").read_text())
    assert config["predictor"] == name
    loaded = Predictor.load(tmp_path / name)
    assert type(loaded) is type(fitted[name])
    for a, b in zip(fitted[name].predict(data["three"]), loaded.predict(data["three"]), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob(".*tmp")), "temp folder left behind"


def test_save_replaces_existing_folder(fitted, tmp_path):
    fitted["xgb"].save(tmp_path / "p")
    fitted["mlp"].save(tmp_path / "p")
    assert Predictor.load(tmp_path / "p").name == "mlp"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]


@pytest.mark.parametrize("name", ["rnn", "mlp", "xgb"])
def test_deterministic_under_seed(data, name):
    small = SurrogateSettings(ensemble_size=2, embed_dim=8, hidden_dim=8, epochs=2, xgb={"n_estimators": 20})
    train, y = data["train"][:120], data["y"][:120]
    a = make_predictor(name, small).fit(train, y).predict(data["held"])[0]
    b = make_predictor(name, small).fit(train, y).predict(data["held"])[0]
    np.testing.assert_array_equal(a, b)
    other = SurrogateSettings(**{**small.to_dict(), "seed": 1})
    c = make_predictor(name, other).fit(train, y).predict(data["held"])[0]
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", ["rnn", "mlp", "xgb"])
@pytest.mark.parametrize("b", [1, 2, 4])
def test_fast_child_scoring_equals_scoring_each_child(fitted, data, name, b):
    space = data["space"]
    parents = space.sample_tokens(b, 5, np.random.default_rng(b))
    children, _ = space.expand(parents)
    fast = fitted[name].predict_children(parents, space.block_table(b + 1))
    slow = fitted[name].predict(children)
    np.testing.assert_allclose(fast[0], slow[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(fast[1], slow[1], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", ["rnn", "mlp", "xgb"])
@pytest.mark.parametrize("b", [1, 2, 3, 4])
def test_insertion_scoring_equals_scoring_each_child(fitted, data, name, b):
    space = data["space"]
    parents = unique_rows(canonical_tokens(space.sample_tokens(b, 6, np.random.default_rng(10 + b))))
    children, parent_index, _ = space.canonical_children(parents)
    positions = insertion_positions(children, parents[parent_index])
    assert (positions >= 0).mean() > 0.95 and len(np.unique(positions)) > 1
    ok = positions >= 0
    blocks = children.reshape(len(children), b + 1, 4)[ok, positions[ok]]
    rebuilt = insert_blocks(parents[parent_index[ok]], blocks, positions[ok])
    np.testing.assert_array_equal(rebuilt, children[ok])
    fast = fitted[name].predict_insertions(parents, blocks, positions[ok], parent_index[ok])
    slow = fitted[name].predict(children[ok])
    np.testing.assert_allclose(fast[0], slow[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(fast[1], slow[1], atol=1e-5, rtol=0)


def test_fast_scoring_with_op_subset(fitted):
    space = Space.from_names(["sep3x3", "max3x3", "identity"])
    parents = space.sample_tokens(3, 4, np.random.default_rng(0))
    children, _ = space.expand(parents)
    for name in ("rnn", "mlp"):
        fast = fitted[name].predict_children(parents, space.block_table(4))[0]
        np.testing.assert_allclose(fast, fitted[name].predict(children)[0], atol=1e-5, rtol=0)


def test_first_prediction_near_mean_accuracy(data):
    untrained = SurrogateSettings(
        ensemble_size=2, embed_dim=8, hidden_dim=8, epochs=1, lr_first=1e-9, lr=1e-9
    )
    for name in ("rnn", "mlp"):
        mean = make_predictor(name, untrained).fit(data["train"], data["y"]).predict(data["held"])[0]
        assert abs(float(mean.mean()) - float(data["y"].mean())) < 0.01


def test_settings_reject_unknown_and_bad_values(tmp_path):
    with pytest.raises(PnasError, match="'embedding'"):
        SurrogateSettings.from_dict({"embedding": 3})
    with pytest.raises(PnasError, match=r"xgb\.depth"):
        SurrogateSettings.from_dict({"xgb": {"depth": 3}})
    with pytest.raises(PnasError, match="setting epochs"):
        SurrogateSettings.from_dict({"epochs": 0})
    with pytest.raises(PnasError, match="setting loss"):
        SurrogateSettings.from_dict({"loss": "huber"})
    path = tmp_path / "s.yaml"
    path.write_text("epochs: 3\nxgb:\n  max_depth: 2\n")
    s = SurrogateSettings.from_file(path)
    assert s.epochs == 3 and s.xgb["max_depth"] == 2 and s.xgb["n_estimators"] == 200
    assert SurrogateSettings.from_dict(s.to_dict()) == s
    with pytest.raises(PnasError, match="not found"):
        SurrogateSettings.from_file(tmp_path / "none.json")


def test_learning_rate_by_largest_block():
    s = SurrogateSettings()
    assert (s.lr_for(1), s.lr_for(2), s.lr_for(5)) == (0.01, 0.002, 0.002)


def test_input_errors(data):
    with pytest.raises(PnasError, match="not fitted"):
        make_predictor("rnn").predict(data["held"])
    with pytest.raises(PnasError, match="unknown predictor"):
        make_predictor("gp")
    with pytest.raises(PnasError, match="accuracies"):
        make_predictor("xgb", FAST).fit(data["held"], np.zeros(3))
    with pytest.raises(PnasError, match=r"\[0, 1\]"):
        make_predictor("xgb", FAST).fit(data["held"][:3], [0.1, 2.0, 0.3])
    with pytest.raises(PnasError, match="block 1"):
        group_by_size(["0:sep3x3,9:max3x3"])


def test_surrogates_run_on_cpu_unless_their_settings_ask_for_cuda():
    from pnas_core.surrogate import make_predictor

    assert SurrogateSettings().device == "cpu"
    assert str(make_predictor("mlp", SurrogateSettings()).device) == "cpu"
    with pytest.raises(PnasError, match="surrogate setting device is 'gpu'"):
        SurrogateSettings.from_dict({"device": "gpu"})
