"""Predictor options: the pairwise ranking loss (rank_weight) and warm starts from the previous
level's predictor (warm_start, ``pnas fit-surrogate --warm-from``, the workflow's fit rule)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from synthetic import write_records
from test_workflow import make_project, snakemake

from pnas_core.cli import main
from pnas_core.errors import PnasError
from pnas_core.space.cells import Space
from pnas_core.surrogate import Predictor, SurrogateSettings, make_predictor
from pnas_core.surrogate.train_loop import pairwise_rank_loss

SMALL = SurrogateSettings(ensemble_size=2, embed_dim=8, hidden_dim=8, epochs=3, batch_size=32)


@pytest.fixture(scope="module")
def data():
    space, rng = Space(), np.random.default_rng(0)
    one, two = space.one_block_tokens(), space.sample_tokens(2, 120, rng)
    acc = lambda t: 0.7 + 0.01 * t[:, 2::4].sum(1) / t.shape[1] + rng.normal(0, 0.003, len(t))  # noqa: E731
    return {"one": (list(one), acc(one)), "both": ([*one, *two], np.concatenate([acc(one), acc(two)]))}


def test_pairwise_rank_loss_penalises_misordered_pairs():
    target = torch.tensor([0.9, 0.8, 0.7])
    ordered, reversed_ = torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0.7, 0.8, 0.9])
    assert pairwise_rank_loss(reversed_, target) > pairwise_rank_loss(ordered, target) > 0
    assert pairwise_rank_loss(ordered, torch.full((3,), 0.5)) == 0  # no ordered pair


@pytest.mark.parametrize("name", ["rnn", "mlp"])
def test_rank_weight_fits_deterministic_and_saves(data, tmp_path, name):
    ranked = SurrogateSettings(**{**SMALL.to_dict(), "rank_weight": 1.0})
    cells, y = data["both"]
    a = make_predictor(name, ranked).fit(cells, y)
    b = make_predictor(name, ranked).fit(cells, y)
    plain = make_predictor(name, SMALL).fit(cells, y)
    np.testing.assert_array_equal(a.predict(cells)[0], b.predict(cells)[0])
    assert not np.array_equal(a.predict(cells)[0], plain.predict(cells)[0])
    assert 0.5 < a.predict(cells)[0].mean() < 0.9  # still on the accuracy scale
    a.save(tmp_path / name)
    loaded = Predictor.load(tmp_path / name)
    assert loaded.settings.rank_weight == 1.0
    np.testing.assert_array_equal(loaded.predict(cells)[0], a.predict(cells)[0])


@pytest.mark.parametrize("name", ["rnn", "mlp"])
def test_warm_start_from_previous_level(data, tmp_path, name):
    settings = SurrogateSettings(**{**SMALL.to_dict(), "warm_start": True})
    previous = make_predictor(name, settings).fit(*data["one"])
    previous.save(tmp_path / "prev")
    previous = Predictor.load(tmp_path / "prev")
    cells, y = data["both"]
    warm = make_predictor(name, settings).fit(cells, y, warm_from=previous)
    again = make_predictor(name, settings).fit(cells, y, warm_from=previous)
    cold = make_predictor(name, settings).fit(cells, y)
    np.testing.assert_array_equal(warm.predict(cells)[0], again.predict(cells)[0])
    assert not np.array_equal(warm.predict(cells)[0], cold.predict(cells)[0])
    assert warm.meta["warm_from_n_fit"] == len(data["one"][1])
    warm.save(tmp_path / "warm")
    np.testing.assert_array_equal(Predictor.load(tmp_path / "warm").predict(cells)[0], warm.predict(cells)[0])
    wider = SurrogateSettings(**{**settings.to_dict(), "hidden_dim": 16})
    with pytest.raises(PnasError, match="hidden_dim"):
        make_predictor(name, wider).fit(cells, y, warm_from=previous)
    other = "mlp" if name == "rnn" else "rnn"
    with pytest.raises(PnasError, match="cannot warm-start"):
        make_predictor(other, settings).fit(cells, y, warm_from=previous)


def test_cli_fit_surrogate_warm_from(tmp_path: Path, capsys):
    space = Space.from_names(["sep3x3", "max3x3"])
    write_records(tmp_path / "r1.parquet", space.one_block_tokens())
    write_records(tmp_path / "r2.parquet", space.sample_tokens(2, 12, np.random.default_rng(0)))
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({**SMALL.to_dict(), "warm_start": True, "xgb": {"n_estimators": 5}}))
    fit = ["fit-surrogate", "--predictors", "rnn", "mlp", "xgb", "--settings", str(settings)]
    assert main([*fit, "--records", str(tmp_path / "r1.parquet"), "--out", str(tmp_path / "l1")]) == 0
    records = [str(tmp_path / "r1.parquet"), str(tmp_path / "r2.parquet")]
    argv = [*fit, "--records", *records, "--warm-from", str(tmp_path / "l1"), "--out", str(tmp_path / "l2")]
    assert main(argv) == 0
    assert "warm-started from" in capsys.readouterr().out
    meta = json.loads((tmp_path / "l2" / "manifest.json").read_text())["meta"]
    assert meta["rnn"]["warm_from_n_fit"] == meta["mlp"]["warm_from_n_fit"] == len(space.one_block_tokens())
    assert "warm_from_n_fit" not in meta["xgb"]
    settings.write_text(json.dumps(SMALL.to_dict()))
    assert main(argv) != 0
    assert "--warm-from needs warm_start: true" in capsys.readouterr().err


def test_workflow_passes_the_previous_surrogate_when_warm_start_is_on(tmp_path: Path):
    root = make_project(tmp_path / "wf")
    overlay = {"surrogate": {"ensemble_size": 2, "epochs": 5, "warm_start": True}}
    (root / "warm.yaml").write_text(yaml.safe_dump(overlay))
    proc = snakemake(root, "-n", "-p", "results/tiny/level2/surrogate", configs=("tiny.yaml", "warm.yaml"))
    text = proc.stdout + proc.stderr
    assert "--warm-from results/tiny/level1/surrogate" in text
    assert text.count("pnas fit-surrogate") == 2
    cold = snakemake(root, "-n", "-p", "results/tiny/level2/surrogate")
    assert "--warm-from" not in cold.stdout + cold.stderr
