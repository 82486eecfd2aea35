"""Beam step: enumeration, sampling, expand+score tables, top-K selection, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from synthetic import op_accuracy, write_records

from pnas_core.cli import main
from pnas_core.errors import PnasError
from pnas_core.search import beam, scoring
from pnas_core.search.selection import Selection
from pnas_core.space.cells import Space, canonical, cell_id, num_blocks_of, parse, tokens_to_texts
from pnas_core.surrogate import SurrogateSettings, make_predictor
from pnas_core.training.complexity import count_mult_adds, count_params
from pnas_core.training.network import build_network

TINY = SurrogateSettings(ensemble_size=2, embed_dim=8, hidden_dim=8, epochs=2, xgb={"n_estimators": 20})


@pytest.fixture(scope="module")
def predictors():
    space = Space()
    tokens = space.one_block_tokens()
    return {
        name: make_predictor(name, TINY).fit(tokens, op_accuracy(tokens)) for name in ("rnn", "mlp", "xgb")
    }


def test_enumerate_level1():
    table = beam.enumerate_level1(Space())
    assert table.schema == beam.candidates_schema()
    df = table.to_pandas()
    assert len(df) == 136 and df["cell"].is_unique
    assert list(df["rank"]) == list(range(136))
    assert all(canonical(c) == c for c in df["cell"])
    assert list(df["cell_id"]) == [cell_id(c) for c in df["cell"]]
    assert df["parent"].isna().all() and df["score"].isna().all() and (df["num_blocks"] == 1).all()
    assert beam.enumerate_level1(Space.from_names(["sep3x3", "max3x3"])).num_rows == 10


def test_sample_distinct_seeded():
    space = Space.from_names(["sep3x3", "identity"])
    a = beam.sample_cells(space, 2, 50, seed=3).to_pandas()
    assert len(a) == 50 and a["cell"].is_unique and (a["num_blocks"] == 2).all()
    assert all(space.contains(parse(c)) for c in a["cell"])
    assert a.equals(beam.sample_cells(space, 2, 50, seed=3).to_pandas())
    assert not a.equals(beam.sample_cells(space, 2, 50, seed=4).to_pandas())
    assert beam.sample_cells(space, 1, 10, seed=0).num_rows == 10  # the whole 1-block space
    with pytest.raises(PnasError, match="11 distinct"):
        beam.sample_cells(space, 1, 11, seed=0)


def test_expand_and_score_table(predictors):
    space = Space()
    parents = space.sample_tokens(2, 3, np.random.default_rng(0))
    table = scoring.expand_and_score(np.concatenate([parents, parents[:1]]), predictors, space)
    assert table.schema == beam.scored_schema(["rnn", "mlp", "xgb"])
    df = table.to_pandas()
    children, _ = space.expand(parents)
    assert df["cell"].is_unique and df["cell_id"].is_unique
    assert set(df["cell"]) == set(tokens_to_texts(children))
    for c, p in zip(df["cell"][::50], df["parent"][::50], strict=True):
        assert parse(c) in space.children(parse(p))
    assert (df["num_blocks"] == 3).all()
    np.testing.assert_allclose(
        df["pred_mean"], df[["pred_rnn", "pred_mlp", "pred_xgb"]].mean(axis=1), atol=1e-6
    )


def test_scores_are_those_of_the_canonical_cell(predictors):
    """The fast path (parent + block) and the full path give each cell the score of its canonical
    tokens, whichever parent produced it."""
    space = Space()
    rng = np.random.default_rng(5)
    parents = np.concatenate(
        [space.sample_tokens(3, 6, rng), space.sample_tokens(3, 2, rng)[:, [4, 5, 6, 7] * 3]]
    )
    df = scoring.expand_and_score(parents, predictors, space).to_pandas()
    tokens = np.stack([parse(c).tokens() for c in df["cell"]])
    for name, predictor in predictors.items():
        mean, std = predictor.predict(tokens)
        np.testing.assert_allclose(df[f"pred_{name}"], mean, atol=1e-5)
        np.testing.assert_allclose(df[f"std_{name}"], std, atol=1e-5)


def test_level_with_many_equal_children_trains_each_cell_once(predictors):
    # Parents built from three input-only blocks: A;B's child A;B;C is B;C's child B;C;A and
    # A;C's child A;C;B, all one cell, so the level has far fewer cells than parent x block.
    blocks = ["0:sep3x3,1:sep3x3", "0:max3x3,1:identity", "1:sep5x5,1:sep5x5"]
    texts = [f"{a};{b}" for a in blocks for b in blocks]
    space = Space()
    parents = np.stack([parse(t).tokens() for t in texts])
    df = scoring.expand_and_score(parents, predictors, space).to_pandas()
    sequences, _ = space.expand(np.unique(parents, axis=0))
    distinct = set(tokens_to_texts(sequences))
    assert len(df) == len(distinct) < len(sequences)
    assert df["cell"].is_unique and df["cell_id"].is_unique
    assert "0:sep3x3,1:sep3x3;0:max3x3,1:identity;1:sep5x5,1:sep5x5" in distinct
    top = beam.select(scoring.expand_and_score(parents, predictors, space), 500, "mlp").to_pandas()
    assert top["cell_id"].is_unique and len(top) == 500


def _scored(cells: list[str], scores: list[float]) -> pa.Table:
    n = len(cells)
    return pa.Table.from_pydict(
        {
            "cell": cells,
            "cell_id": [cell_id(c) for c in cells],
            "num_blocks": [num_blocks_of(c) for c in cells],
            "parent": [c.rsplit(";", 1)[0] for c in cells],
            "pred_xgb": scores,
            "std_xgb": [0.0] * n,
            "pred_mean": scores,
        },
        schema=beam.scored_schema(["xgb"]),
    )


def test_select_top_k_best_first_ties_by_text(predictors):
    space = Space()
    parents = space.sample_tokens(1, 2, np.random.default_rng(1))
    scored = scoring.expand_and_score(parents, predictors, space)
    for k in (1, 7, 10_000):
        top = beam.select(scored, k, "rnn")
        assert top.schema == beam.candidates_schema(["rnn", "mlp", "xgb"])
        df = top.to_pandas()
        assert len(df) == min(k, scored.num_rows) and df["cell"].is_unique
        assert list(df["rank"]) == list(range(len(df)))
        assert (np.diff(df["score"]) <= 0).all()
        np.testing.assert_array_equal(df["score"], df["pred_rnn"])
        assert all(
            num_blocks_of(c) == num_blocks_of(p) + 1 for c, p in zip(df["cell"], df["parent"], strict=True)
        )
    tied = _scored(
        [
            "1:sep5x5,1:sep5x5;0:sep3x3,0:sep3x3",
            "0:sep3x3,0:sep3x3;0:sep3x3,0:sep3x3",
            "0:sep3x3,0:sep3x3;0:max3x3,0:max3x3",
        ],
        [0.5, 0.5, 0.9],
    )
    assert beam.select(tied, 2, "xgb").column("cell").to_pylist() == [
        "0:sep3x3,0:sep3x3;0:max3x3,0:max3x3",
        "0:sep3x3,0:sep3x3;0:sep3x3,0:sep3x3",
    ]


def test_select_errors():
    scored = _scored(["0:sep3x3,0:sep3x3;0:sep3x3,0:sep3x3"], [0.5])
    with pytest.raises(PnasError, match="'rnn'"):
        beam.select(scored, 3, "rnn")
    with pytest.raises(PnasError, match="--k"):
        beam.select(scored, 0, "mean")
    with pytest.raises(PnasError, match="non-finite"):
        beam.select(_scored(["0:sep3x3,0:sep3x3;0:sep3x3,0:sep3x3"], [float("nan")]), 1, "xgb")


def test_cli_beam_level(tmp_path, capsys):
    ops = ["sep3x3", "max3x3", "identity"]
    space = Space.from_names(ops)
    settings = tmp_path / "s.json"
    settings.write_text(
        '{"ensemble_size": 2, "embed_dim": 8, "hidden_dim": 8, "epochs": 2, "xgb": {"n_estimators": 10}}'
    )
    assert main(["enumerate", "--ops", *ops, "--out", str(tmp_path / "l1/candidates.parquet")]) == 0
    write_records(tmp_path / "r1.parquet", space.one_block_tokens())
    write_records(
        tmp_path / "r_bad.parquet", space.sample_tokens(1, 3, np.random.default_rng(0)), status="failed"
    )
    assert (
        main(
            [
                "fit-surrogate",
                "--records",
                str(tmp_path / "r1.parquet"),
                str(tmp_path / "r_bad.parquet"),
                "--settings",
                str(settings),
                "--out",
                str(tmp_path / "sur"),
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "sur").iterdir()) == ["manifest.json", "mlp", "rnn", "xgb"]
    assert (
        main(
            [
                "expand-score",
                "--parents",
                str(tmp_path / "l1/candidates.parquet"),
                "--surrogate",
                str(tmp_path / "sur"),
                "--ops",
                *ops,
                "--out",
                str(tmp_path / "l2/scored.parquet"),
            ]
        )
        == 0
    )
    scored = pd.read_parquet(tmp_path / "l2/scored.parquet")
    assert len(scored) == space.count_distinct(2) < 21 * space.blocks_per_position(2)
    assert (
        main(
            [
                "select",
                "--scored",
                str(tmp_path / "l2/scored.parquet"),
                "--k",
                "8",
                "--out",
                str(tmp_path / "l2/candidates.parquet"),
            ]
        )
        == 0
    )
    top = pd.read_parquet(tmp_path / "l2/candidates.parquet")
    assert len(top) == 8 and list(top["rank"]) == list(range(8))
    np.testing.assert_array_equal(top["score"], np.sort(scored["pred_mean"].to_numpy())[::-1][:8])
    assert (
        main(["sample", "--blocks", "2", "--n", "5", "--ops", *ops, "--out", str(tmp_path / "rand.parquet")])
        == 0
    )
    assert len(pd.read_parquet(tmp_path / "rand.parquet")) == 5


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["select", "--scored", "nope.parquet", "--k", "3", "--out", "x.parquet"],
            "scored file nope.parquet does not exist",
        ),
        (
            ["expand-score", "--parents", "nope.parquet", "--surrogate", "s", "--out", "x.parquet"],
            "parents file nope.parquet does not exist",
        ),
        (
            ["fit-surrogate", "--records", "nope.parquet", "--out", "s"],
            "records file nope.parquet does not exist",
        ),
        (["enumerate", "--ops", "sep9x9", "--out", "x.parquet"], "unknown op 'sep9x9'"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "selection, message",
    [
        ({"select_by": "gp"}, "cannot select by 'gp'"),
        ({"select_by": "ucb", "ucb_kappa": "2"}, "selection ucb_kappa must be a number, got '2'"),
        ({"max_params": 2.5}, "selection max_params must be an integer, got 2.5"),
        ({"pareto": "false"}, "selection pareto must be true or false, got 'false'"),
        ({"by": "ucb"}, "unknown key(s) 'by' (known: select_by, ucb_kappa,"),
    ],
)
def test_cli_bad_selection_is_one_line(tmp_path, monkeypatch, capsys, selection, message):
    monkeypatch.chdir(tmp_path)
    beam.write_table(_scored(["0:sep3x3,0:sep3x3;0:sep3x3,0:sep3x3"], [0.5]), "s.parquet")
    (tmp_path / "selection.json").write_text(json.dumps(selection))
    argv = [
        "select",
        "--scored",
        "s.parquet",
        "--k",
        "3",
        "--selection",
        "selection.json",
        "--out",
        "x.parquet",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "selection.json" in err and err.count("\n") == 1
    assert not (tmp_path / "x.parquet").exists()


def selection_file(path: Path, **keys: object) -> str:
    """A selection settings file of ``keys`` (the config's search keys), as the workflow writes it."""
    path.write_text(json.dumps(Selection.from_mapping(keys).to_mapping()))
    return str(path)


def test_cli_costs_ucb_budget_and_pareto(tmp_path, monkeypatch, capsys, predictors):
    from pnas_core.surrogate.bundle import save_predictors
    from pnas_core.training.cost import search_network
    from pnas_core.training.train import TrainSettings

    monkeypatch.chdir(tmp_path)
    ops = ["sep3x3", "max3x3", "identity"]
    save_predictors(predictors, "sur")
    assert main(["enumerate", "--ops", *ops, "--out", "l1.parquet"]) == 0
    train = TrainSettings(dataset="digits", cells_per_stack=1, filters=4)
    (tmp_path / "train.json").write_text(json.dumps(train.to_dict()))
    argv = ["expand-score", "--parents", "l1.parquet", "--surrogate", "sur", "--ops", *ops]
    assert main([*argv, "--settings", "train.json", "--out", "scored.parquet"]) == 0
    scored = pd.read_parquet("scored.parquet")
    assert scored["params"].dtype == scored["mult_adds"].dtype == np.int64
    net, shape = search_network(train)
    for row in scored.sample(4, random_state=0).itertuples():
        model = build_network(parse(row.cell), net)
        assert (row.params, row.mult_adds) == (count_params(model), count_mult_adds(model, shape))

    limit = int(scored["params"].quantile(0.25))
    select = ["select", "--scored", "scored.parquet", "--k", "6", "--selection"]
    ucb_file = selection_file(tmp_path / "ucb.json", select_by="ucb", ucb_kappa=0.5, max_params=limit)
    assert main([*select, ucb_file, "--out", "u.parquet"]) == 0
    ucb = pd.read_parquet("u.parquet")
    assert len(ucb) == 6 and (ucb["params"] <= limit).all() and (ucb["max_params"] == limit).all()
    assert (
        f"6 of {len(scored)} children by ucb (kappa 0.5) within max_params {limit:,}"
        in capsys.readouterr().out
    )
    pareto = selection_file(tmp_path / "pareto.json", pareto=True, pareto_cost="mult_adds")
    assert main([*select, pareto, "--out", "p.parquet"]) == 0
    front = pd.read_parquet("p.parquet")
    assert front["front"].notna().all() and (front["pareto_cost"] == "mult_adds").all()
    assert front["cell"].isin(scored["cell"]).all() and (np.diff(front["front"]) >= 0).all()

    capsys.readouterr()
    cheapest = int(scored["params"].min())
    too_cheap = selection_file(tmp_path / "cheap.json", max_params=cheapest - 1)
    assert main([*select, too_cheap, "--out", "none.parquet"]) == 2
    err = capsys.readouterr().err
    assert f"the cheapest has {cheapest:,} params" in err and err.count("\n") == 1
    assert not (tmp_path / "none.parquet").exists()
    assert main(["expand-score", *argv[1:], "--out", "bare.parquet"]) == 0  # no --settings: no cost
    pareto = ["--selection", selection_file(tmp_path / "p.json", pareto=True)]
    assert main(["select", "--scored", "bare.parquet", "--k", "3", *pareto, "--out", "x.parquet"]) == 2
    assert "expand-score --settings" in capsys.readouterr().err


def test_search_budget_is_what_the_search_trains() -> None:
    """The random-search baseline's default budget: every 1-block cell, then min(K, cells) per level."""
    space = Space.from_names(None)
    assert beam.search_budget(space, 3, 16) == 136 + 16 + 16
    quick = Space.from_names(["sep3x3", "conv7x1", "identity", "max3x3"])  # config/config.yaml
    assert beam.search_budget(quick, 3, 32) == 36 + 2 * 32
    assert beam.search_budget(space, 5, 256) == 136 + 4 * 256  # config/paper.yaml: 1,160
    small = Space.from_names(["sep3x3", "identity", "max3x3"])  # tests/configs/tiny.yaml
    assert beam.search_budget(small, 1, 3) == small.count_distinct(1) == 21
    assert beam.search_budget(small, 2, 10**9) == 21 + small.count_distinct(2)  # beam wider than the space
    with pytest.raises(PnasError, match="max_blocks"):
        beam.search_budget(small, 6, 3)


def test_sample_auto_takes_the_search_budget(tmp_path, capsys) -> None:
    ops = ["sep3x3", "identity", "max3x3"]
    out = tmp_path / "random.parquet"
    argv = ["sample", "--blocks", "2", "--n", "auto", "--ops", *ops, "--out", str(out)]
    assert main([*argv, "--beam-size", "3", "--max-blocks", "2"]) == 0
    assert len(pd.read_parquet(out)) == 21 + 3
    assert main(argv) == 2
    assert "--n auto needs --beam-size and --max-blocks" in capsys.readouterr().err
    # more than the space holds: every cell of that size, once
    assert main(["sample", "--blocks", "1", "--n", "500", "--ops", *ops, "--out", str(out)]) == 0
    assert sorted(pd.read_parquet(out)["cell"]) == sorted(
        beam.enumerate_level1(Space.from_names(ops))["cell"].to_pylist()
    )
