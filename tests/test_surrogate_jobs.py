"""Predictor work spread over threads (pnas_core.surrogate.jobs): the same fits and scores for any
thread count, through the library and the CLI; the job runner's order, failures and bad input; the
RNN's one-hot input path equal to reading embeddings; distinct_blocks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch
from synthetic import op_accuracy, write_records

from pnas_core.cli import main
from pnas_core.errors import PnasError
from pnas_core.search import scoring
from pnas_core.space.cells import (
    Space,
    canonical_tokens,
    distinct_blocks,
    insertion_positions,
    tokens_to_texts,
)
from pnas_core.surrogate import SurrogateSettings
from pnas_core.surrogate.bundle import fit_predictors
from pnas_core.surrogate.jobs import Jobs, one_job, run_jobs
from pnas_core.surrogate.rnn import LSTMModel

SMALL = SurrogateSettings(ensemble_size=3, embed_dim=12, hidden_dim=16, epochs=3, xgb={"n_estimators": 20})
NAMES = ["rnn", "mlp", "xgb", "gnn"]


@pytest.fixture(scope="module")
def fit_df():
    space, rng = Space(), np.random.default_rng(0)
    tokens = [space.one_block_tokens(), space.sample_tokens(2, 120, rng)]
    texts = [t for group in tokens for t in tokens_to_texts(group)]
    acc = np.concatenate([op_accuracy(group, rng) for group in tokens])
    return pd.DataFrame({"cell": texts, "val_acc": acc})


def test_fit_and_scores_are_the_same_for_any_thread_count(fit_df):
    space = Space()
    parents = space.sample_tokens(2, 12, np.random.default_rng(1))
    fits, tables = {}, {}
    for workers in (1, 2, 3):
        fits[workers] = fit_predictors(fit_df, NAMES, SMALL, workers=workers)
        tables[workers] = scoring.expand_and_score(parents, fits[workers], space, workers=workers)
    for name in NAMES[:2]:
        for a, b in zip(fits[1][name].members, fits[2][name].members, strict=True):
            for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
                assert torch.equal(x, y), f"{name} member weight {key} differs with 2 threads"
    assert tables[1].num_rows > 1000
    assert tables[1].equals(tables[2]) and tables[1].equals(tables[3])


def test_cli_threads_give_the_same_files(tmp_path, capsys):
    space = Space.from_names(["sep3x3", "max3x3", "identity"])
    write_records(tmp_path / "records.parquet", space.one_block_tokens())
    (tmp_path / "s.json").write_text('{"ensemble_size": 3, "embed_dim": 8, "hidden_dim": 8, "epochs": 2}')
    ops = ["--ops", "sep3x3", "max3x3", "identity"]
    assert main(["enumerate", *ops, "--out", str(tmp_path / "l1.parquet")]) == 0
    for threads in ("1", "2"):
        fit = ["fit-surrogate", "--records", str(tmp_path / "records.parquet"), "--settings"]
        out = str(tmp_path / f"sur{threads}")
        assert main([*fit, str(tmp_path / "s.json"), "--threads", threads, "--out", out]) == 0
        score = ["expand-score", "--parents", str(tmp_path / "l1.parquet"), "--surrogate", out, *ops]
        assert main([*score, "--threads", threads, "--out", str(tmp_path / f"scored{threads}.parquet")]) == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "scored1.parquet"), pd.read_parquet(tmp_path / "scored2.parquet")
    )
    with pytest.raises(SystemExit):
        main(
            ["fit-surrogate", "--records", str(tmp_path / "records.parquet"), "--threads", "0", "--out", "x"]
        )
    assert "argument --threads: must be in 1.." in capsys.readouterr().err


def test_run_jobs_order_alone_jobs_and_results():
    ran: list[tuple[str, str]] = []

    def part(tag: str, value: int):
        def call() -> int:
            ran.append((tag, threading.current_thread().name))
            return value

        return call

    jobs = [
        Jobs([part("a0", 1), part("a1", 2)], sum),
        one_job(part("solo", 10), alone=True),
        one_job(part("single", 5)),
    ]
    assert run_jobs(jobs, 2) == [3, 10, 5]
    assert ran[0][0] == "single", "indivisible jobs start first"
    assert ran[-1] == ("solo", threading.current_thread().name), "alone jobs run last, by themselves"
    assert all(name.startswith("pnas-surrogate") for tag, name in ran if tag != "solo")
    ran.clear()
    assert run_jobs(jobs, 1) == [3, 10, 5] and [tag for tag, _ in ran] == ["a0", "a1", "solo", "single"]


def test_run_jobs_raises_the_first_failure_and_drops_parts_not_started():
    started = []

    def fail() -> None:
        raise ValueError("member 0 failed")

    def slow() -> None:
        started.append(1)
        time.sleep(0.02)

    with pytest.raises(ValueError, match="member 0 failed"):
        run_jobs([Jobs([fail, *[slow] * 50], list)], 2)
    assert len(started) < 50
    with pytest.raises(PnasError, match="workers must be >= 1"):
        run_jobs([one_job(int)], 0)


def test_lstm_one_hot_path_equals_reading_embeddings():
    torch.manual_seed(0)
    model = LSTMModel(embed_dim=10, hidden_dim=12)
    tokens = torch.as_tensor(Space().sample_tokens(3, 50, np.random.default_rng(0)), dtype=torch.long)
    t = tokens.view(50, 3, 4)
    embedded = torch.cat([model.in_embed(t[..., :2]), model.op_embed(t[..., 2:])], dim=2).view(50, 12, -1)
    _, (h, c) = model.lstm(embedded)
    h_fast, c_fast = model.state(tokens)
    torch.testing.assert_close(h_fast, h[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(c_fast, c[0], atol=1e-6, rtol=0)
    grads = torch.autograd.grad(h_fast.sum(), [model.in_embed.weight, model.lstm.weight_ih_l0])
    reference = torch.autograd.grad(h[0].sum(), [model.in_embed.weight, model.lstm.weight_ih_l0])
    for g, r in zip(grads, reference, strict=True):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-5)


def test_distinct_blocks_match_numpy_unique():
    blocks = Space().sample_tokens(4, 500, np.random.default_rng(3)).reshape(-1, 4)
    rows, inverse = distinct_blocks(blocks)
    reference = np.unique(blocks, axis=0)
    assert len(rows) == len(reference) < len(blocks)
    assert {tuple(r) for r in rows} == {tuple(r) for r in reference}
    np.testing.assert_array_equal(rows[inverse], blocks)
    with pytest.raises(PnasError, match=r"shape \(n, 4\)"):
        distinct_blocks(blocks.reshape(-1, 8))


def test_xgb_scores_on_one_thread_equal_its_threaded_predictions(fit_df):
    xgb = fit_predictors(fit_df, ["xgb"], SMALL)["xgb"]
    assert xgb.settings.xgb["n_jobs"] == 2
    space = Space()
    parents = canonical_tokens(space.sample_tokens(3, 8, np.random.default_rng(4)))
    children, parent_index, _ = space.canonical_children(parents)
    positions = insertion_positions(children, parents[parent_index])
    ok = positions >= 0
    blocks = children.reshape(len(children), 4, 4)[ok, positions[ok]]
    jobs = xgb.insertion_jobs(parents, blocks, positions[ok], parent_index[ok])
    assert not jobs.alone
    np.testing.assert_array_equal(jobs.run()[0], xgb.predict(children[ok])[0])
