"""Predictor quality: held-out and next-size Spearman rho, Algorithm 2, the eval-surrogate CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from synthetic import op_accuracy

from pnas_core.cli import main
from pnas_core.errors import PnasError
from pnas_core.search import quality
from pnas_core.space.cells import Space, cell_id, tokens_to_texts
from pnas_core.surrogate import SurrogateSettings

SMALL = SurrogateSettings(ensemble_size=2, embed_dim=16, hidden_dim=16, epochs=15, xgb={"n_estimators": 80})


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    space, rng = Space(), np.random.default_rng(0)
    frames = []
    for tokens in (space.one_block_tokens(), space.sample_tokens(2, 120, rng)):
        b = tokens.shape[1] // 4
        acc = op_accuracy(tokens)
        texts = tokens_to_texts(tokens)
        frames.append(
            pd.DataFrame(
                {
                    "cell": texts,
                    "cell_id": [cell_id(t) for t in texts],
                    "num_blocks": b,
                    "val_acc": acc + rng.normal(0, 0.003, len(acc)),
                    "status": "ok",
                    "params": 1,
                }
            )
        )
    failed = frames[1].iloc[:5].assign(status="failed", val_acc=np.nan)
    return pd.concat([*frames, failed], ignore_index=True)


def test_evaluate_reports_heldout_and_next(records):
    df = quality.heldout_quality(records, 1, ["mlp", "xgb"], SMALL, seed=0)
    assert set(df["predictor"]) == {"mlp", "xgb", "mean"}
    assert set(df["split"]) == {"heldout", "next"} and len(df) == 6
    held = df[df["split"] == "heldout"]
    assert (held["n_eval"] == 27).all() and (held["n_train"] == 109).all()
    assert (df.loc[df["split"] == "next", "n_eval"] == 120).all()
    assert (df["rho"] > 0.6).all(), df
    limited = quality.heldout_quality(records, 1, ["xgb"], SMALL, train_size=40, seed=0)
    assert (limited["n_train"] == 40).all() and set(limited["predictor"]) == {"xgb"}


def test_algorithm2_repeats(records):
    df = quality.algorithm2(records, 1, ["rnn", "xgb"], SMALL, train_size=60, repeats=2, seed=1)
    assert len(df) == 2 * 3 * 3 and set(df["repeat"]) == {0, 1}
    assert set(df["split"]) == {"train", "heldout", "next"}
    assert (df.loc[df["split"] == "train", "n_eval"] == 60).all()
    assert (df.loc[df["split"] == "heldout", "n_eval"] == 136 - 60).all()
    assert (df.loc[df["split"] == "next", "n_eval"] == 120).all()
    assert df.loc[df["split"] == "train", "rho"].min() > 0.7
    again = quality.algorithm2(records, 1, ["rnn", "xgb"], SMALL, train_size=60, repeats=2, seed=1)
    pd.testing.assert_frame_equal(df, again)


def test_algorithm2_fits_every_size_up_to_b(records):
    """At b=2 the predictor sees K cells of each size 1..2, as the search's level-2 predictor does."""
    df = quality.algorithm2(records, 2, ["xgb"], SMALL, train_size=50, repeats=1, seed=0)
    assert (df["n_train"] == 50 + 50).all()
    assert (df.loc[df["split"] == "train", "n_eval"] == 50).all()
    assert (df.loc[df["split"] == "heldout", "n_eval"] == 120 - 50).all()
    assert df.loc[df["split"] == "heldout", "rho"].min() > 0.5
    big = quality.algorithm2(records, 2, ["xgb"], SMALL, train_size=110, repeats=1, seed=0)
    assert (big["n_train"] == 110 + 110).all()
    full = quality.algorithm2(records, 2, ["xgb"], SMALL, train_size=118, repeats=1, seed=0)
    assert (full["n_train"] == 118 + 118).all() and (
        full.loc[full["split"] == "heldout", "n_eval"] == 2
    ).all()


def test_no_next_size_gives_nan(records):
    df = quality.heldout_quality(records, 2, ["xgb"], SMALL)
    assert np.isnan(df.loc[df["split"] == "next", "rho"]).all()
    assert (df.loc[df["split"] == "next", "n_eval"] == 0).all()


def test_errors(records):
    with pytest.raises(PnasError, match="with 3 blocks"):
        quality.heldout_quality(records, 3, ["xgb"], SMALL)
    with pytest.raises(PnasError, match="--train-size"):
        quality.algorithm2(records, 1, ["xgb"], SMALL, train_size=1, repeats=1)


def test_algorithm2_fits_on_every_cell_when_fewer_than_train_size(records):
    df = quality.algorithm2(records, 1, ["xgb"], SMALL, train_size=500, repeats=1)
    available = records[(records["num_blocks"] == 1) & (records["status"] == "ok")]["cell"].nunique()
    assert (df["n_train"] == available).all() and available < 500


def test_cli(records, tmp_path, capsys):
    path = tmp_path / "records.parquet"
    records.to_parquet(path)
    settings = tmp_path / "s.json"
    settings.write_text(
        '{"ensemble_size": 2, "embed_dim": 8, "hidden_dim": 8, "epochs": 3, "xgb": {"n_estimators": 20}}'
    )
    out = tmp_path / "q.parquet"
    argv = [
        "eval-surrogate",
        "--records",
        str(path),
        "--blocks",
        "1",
        "--predictors",
        "xgb",
        "mlp",
        "--settings",
        str(settings),
        "--out",
        str(out),
    ]
    assert main([*argv, "--repeats", "2", "--train-size", "50"]) == 0
    table = pq.read_table(out)
    assert table.schema == quality.QUALITY_SCHEMA and table.num_rows == 18
    assert main(argv) == 0 and pq.read_table(out).num_rows == 6
    capsys.readouterr()
    assert main([*argv, "--repeats", "2"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_spearman_has_one_nan_rule():
    from pnas_core.stats import spearman

    assert np.isnan(spearman(np.array([0.1, 0.2]), np.array([0.3, 0.4])))  # two points: always +-1
    assert np.isnan(spearman(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.5, 0.5])))  # a constant side
    assert spearman(np.array([0.1, 0.2, 0.3]), np.array([0.3, 0.1, 0.2])) == pytest.approx(-0.5)


def test_unfinished_cells_are_left_out_and_counted(records):
    # The workflow asks for train_size up to the cells it drew; some diverged: fit on those that
    # finished and say how many did not, instead of stopping the experiment.
    drawn = records[records["num_blocks"] == 1]
    broken = records.copy()
    broken.loc[drawn.index[:4], ["status", "val_acc"]] = ["diverged", np.nan]
    with pytest.warns(quality.UnfinishedCells, match=r"4 1-block cell\(s\) did not finish.*fitting on 132"):
        df = quality.algorithm2(broken, 1, ["xgb"], SMALL, train_size=len(drawn), repeats=1)
    assert (df.loc[df["split"] == "train", "n_train"] == len(drawn) - 4).all()
