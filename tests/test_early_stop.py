"""Early stopping: rungs resume bitwise, a crash between rungs retrains nothing finished, promotion."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from pnas_core.errors import PnasError
from pnas_core.search.early_stop import EarlyStop, last_records, promote, promoted_count
from pnas_core.training import shard
from pnas_core.training.cache import ResultCache, cache_key
from pnas_core.training.shard import train_or_get, train_shard
from pnas_core.training.train import TrainSettings, train_candidate

TINY = {
    "dataset": "digits",
    "val_fraction": 0.2,
    "cells_per_stack": 1,
    "filters": 4,
    "epochs": 3,
    "batch_size": 64,
    "lr": 0.05,
    "device": "cpu",
}
CELLS = ["0:identity,1:avg3x3", "0:max3x3,1:identity"]
VOLATILE = {"train_seconds"}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def settings() -> TrainSettings:
    return TrainSettings.from_dict(TINY)


def _same(a: dict, b: dict) -> bool:
    return {k: v for k, v in a.items() if k not in VOLATILE} == {
        k: v for k, v in b.items() if k not in VOLATILE
    }


def test_rungs_end_bitwise_as_uninterrupted_training(tmp_path: Path, settings: TrainSettings) -> None:
    data = settings.load_data()
    cache = ResultCache(tmp_path)
    full = train_candidate(CELLS[0], settings, data)
    r1, how, _ = train_or_get(CELLS[0], settings, data, cache, stop=(1, None))
    assert how == "trained" and r1["status"] == "stopped" and r1["epochs"] == 1
    assert r1["val_acc"] == full["val_curve"][0] and r1["val_curve"] == full["val_curve"][:1]
    key = (r1["cell_id"], r1["settings_hash"], r1["dataset"], r1["seed"])
    assert cache.checkpoint_path(*key, 1).is_file() and cache.get(*key, rung=1) == r1
    assert cache.get(*key) is None  # the run's own entry is the full budget's
    r3, how, _ = train_or_get(CELLS[0], settings, data, cache, stop=(3, 1))
    assert how == "trained" and r3["status"] == "ok" and _same(r3, full)
    assert cache.get(*key) == r3  # the same entry training without early stopping uses
    assert train_or_get(CELLS[0], settings, data, cache)[1] == "cached"
    assert cache.remove_checkpoints(*key) == 1 and not cache.checkpoint_path(*key, 1).exists()


def test_missing_checkpoint_trains_from_scratch_to_the_same_result(
    tmp_path: Path, settings: TrainSettings
) -> None:
    data = settings.load_data()
    cache = ResultCache(tmp_path)
    r2 = train_or_get(CELLS[1], settings, data, cache, stop=(2, 1))[0]  # no rung-1 checkpoint: epoch 0
    r1 = train_or_get(CELLS[1], settings, data, cache, stop=(1, None))[0]
    assert r2["status"] == "stopped" and r2["val_curve"][:1] == r1["val_curve"]
    assert _same(train_or_get(CELLS[1], settings, data, ResultCache(tmp_path / "b"), stop=(2, 1))[0], r2)


def test_crash_between_rungs_retrains_no_finished_rung(
    tmp_path: Path, settings: TrainSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = settings.load_data()
    cache = ResultCache(tmp_path)
    train_shard(CELLS, settings, data, cache, stop=(1, None))
    real, calls = shard.train_candidate, []

    def crash_on_second(text: str, *args: object, **kwargs: object) -> dict:
        calls.append(text)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the job is killed while training its second candidate
        return real(text, *args, **kwargs)

    monkeypatch.setattr(shard, "train_candidate", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        train_shard(CELLS, settings, data, cache, stop=(3, 1))
    monkeypatch.setattr(shard, "train_candidate", real)
    hows: dict[str, str] = {}
    train_shard(
        CELLS, settings, data, cache, stop=(1, None), on_result=lambda k, t, r, how, m: hows.update({t: how})
    )
    assert set(hows.values()) == {"cached"}
    records = train_shard(
        CELLS, settings, data, cache, stop=(3, 1), on_result=lambda k, t, r, how, m: hows.update({t: how})
    )
    assert hows == {CELLS[0]: "cached", CELLS[1]: "trained"}
    assert _same(records[1], train_candidate(CELLS[1], settings, data))


def test_stop_must_be_an_evaluated_epoch(settings: TrainSettings, tmp_path: Path) -> None:
    data = settings.load_data()
    sparse = TrainSettings.from_dict({**TINY, "eval_every": 2})
    with pytest.raises(PnasError, match="evaluated epoch"):
        train_or_get(CELLS[0], sparse, data, ResultCache(tmp_path), stop=(1, None))
    with pytest.raises(PnasError, match="earlier epoch"):
        train_or_get(CELLS[0], settings, data, ResultCache(tmp_path), stop=(2, 2))
    with pytest.raises(PnasError, match=r"multiple of train\.eval_every"):
        EarlyStop((1,), 0.5).budgets(4, eval_every=2)
    with pytest.raises(PnasError, match="below"):
        EarlyStop((1, 4), 0.5).budgets(4)


def test_promotion_is_deterministic() -> None:
    records = pd.DataFrame(
        {
            "cell": ["d", "b", "a", "c", "e"],
            "val_acc": [0.5, 0.9, 0.5, None, 0.7],
            "status": ["stopped", "stopped", "stopped", "diverged", "stopped"],
        }
    )
    assert promoted_count(5, 0.5) == 3 and promoted_count(4, 0.5) == 2 and promoted_count(1, 0.1) == 1
    assert promote(records, 0.5) == ["b", "a", "e"]  # the tie at 0.5 goes to the smaller text; record order
    assert promote(records.iloc[::-1], 0.5) == ["e", "a", "b"]
    assert promote(records, 0.9) == ["d", "b", "a", "e"]  # a diverged run is never promoted
    later = records.iloc[[1]].assign(val_acc=0.95, status="ok")
    assert last_records([records, later])["val_acc"].tolist()[:2] == [0.5, 0.95]


def test_early_stop_settings_are_checked() -> None:
    assert EarlyStop.from_dict(None) is None
    assert EarlyStop.from_dict({"rungs": [1, 2], "keep": 0.5}).budgets(4) == [1, 2, 4]
    for bad in (
        {"rungs": [2, 1], "keep": 0.5},
        {"rungs": [1], "keep": 1.0},
        {"rungs": [1], "keep": 0.5, "fit_on": "x"},
    ):
        with pytest.raises(PnasError):
            EarlyStop.from_dict(bad)


def test_cache_key_of_a_rung_differs_from_the_run() -> None:
    assert cache_key("a", "b", "c", 0) in str(ResultCache("x").checkpoint_path("a", "b", "c", 0, 2))
