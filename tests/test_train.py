"""Training one candidate, its settings, records, the result cache and device choice."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch

from pnas_core.devices import pick_device, resolve_threads
from pnas_core.errors import PnasError
from pnas_core.io.records import RECORD_COLUMNS, read_records, write_records
from pnas_core.training.cache import CorruptCacheEntry, ResultCache, cache_key
from pnas_core.training.train import TrainSettings, candidate_seed, load_settings, train_candidate

# the quick search default (see bench/RESULTS.md): digits 8x8, N=1, F=8, 3 epochs
QUICK = {
    "dataset": "digits",
    "val_fraction": 0.2,
    "cells_per_stack": 1,
    "filters": 8,
    "epochs": 3,
    "batch_size": 32,
    "lr": 0.05,
    "device": "cpu",
}
CHEAP_CELLS = ("0:identity,1:avg3x3", "0:max3x3,1:identity", "0:avg3x3,0:max3x3", "0:sep3x3,1:identity")


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def quick_records() -> list[dict]:
    torch.set_num_threads(1)
    settings = TrainSettings.from_dict(QUICK)
    return [train_candidate(c, settings) for c in CHEAP_CELLS]


# --------------------------------------------------------------------------- settings


def test_settings_reject_unknown_key_and_wrong_type() -> None:
    with pytest.raises(PnasError, match=r"unknown train setting.*'epoch'"):
        TrainSettings.from_dict({"epoch": 3})
    with pytest.raises(PnasError, match="train setting epochs must be int"):
        TrainSettings.from_dict({"epochs": "3"})
    with pytest.raises(PnasError, match="optimizer is 'rmsprop'"):
        TrainSettings.from_dict({"optimizer": "rmsprop"})
    with pytest.raises(PnasError, match="dataset is 'mnist'"):
        TrainSettings.from_dict({"dataset": "mnist"})
    with pytest.raises(PnasError, match="device is 'gpu'"):
        TrainSettings.from_dict({"device": "gpu"})
    assert TrainSettings.from_dict({"device": "cuda:1"}).device == "cuda:1"
    with pytest.raises(PnasError, match="lr must be positive"):
        TrainSettings.from_dict({"lr": 0})


def test_settings_round_trip_and_hash() -> None:
    s = TrainSettings.from_dict({**QUICK, "lr": 1})  # an int for a float field is accepted
    assert s.lr == 1.0 and isinstance(s.lr, float)
    assert TrainSettings.from_dict(s.to_dict()) == s
    assert TrainSettings.from_dict({"data_root": None}).data_root is None  # the workflow's null: ./data
    assert json.loads(json.dumps(s.to_dict())) == s.to_dict()
    h = s.settings_hash()
    assert len(h) == 16
    # paths, device and seed are not part of the hash; anything that changes training is
    same = TrainSettings.from_dict({**s.to_dict(), "data_root": "/elsewhere", "device": "auto", "seed": 5})
    assert same.settings_hash() == h
    for key, value in (("lr", 0.1), ("epochs", 4), ("filters", 9), ("augment", False), ("grad_clip", 1.0)):
        assert TrainSettings.from_dict({**s.to_dict(), key: value}).settings_hash() != h


def test_paper_defaults() -> None:
    s = TrainSettings()
    assert (s.dataset, s.cells_per_stack, s.filters, s.epochs, s.batch_size, s.lr, s.lr_schedule) == (
        "cifar10",
        2,
        24,
        20,
        32,
        0.01,
        "cosine",
    )


def test_load_settings_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(QUICK))
    (tmp_path / "s.yaml").write_text("dataset: digits\nepochs: 2\nlr: 0.1\nweight_decay: 1e-4\n")
    assert load_settings(tmp_path / "s.json") == TrainSettings.from_dict(QUICK)
    from_yaml = load_settings(tmp_path / "s.yaml")
    assert from_yaml.epochs == 2 and from_yaml.weight_decay == 1e-4  # PyYAML reads 1e-4 as a string
    (tmp_path / "bad.json").write_text('{"filtres": 3}')
    with pytest.raises(PnasError, match=r"bad.json.*'filtres'"):
        load_settings(tmp_path / "bad.json")
    with pytest.raises(PnasError, match="not found"):
        load_settings(tmp_path / "missing.json")


def test_candidate_seed_depends_on_seed_and_cell_only() -> None:
    assert candidate_seed(0, "abc") == candidate_seed(0, "abc")
    assert candidate_seed(0, "abc") != candidate_seed(1, "abc")
    assert candidate_seed(0, "abc") != candidate_seed(0, "abd")
    assert 0 <= candidate_seed(0, "abc") < 2**32


# --------------------------------------------------------------------------- training


GOLDEN = {
    "cell": "0:identity,1:avg3x3",
    "settings_hash": "9199a3398ec0723f",
    "params": 6226,
    "mult_adds": 108352,
    "curve_epochs": [1, 2, 3],
    "val_curve": [0.4444444444444444, 0.7361111111111112, 0.8298611111111112],
    "train_loss": 0.7982978820800781,
}
"""The first quick record as TRAIN_CODE_VERSION 3 trains it (CPU, one thread)."""


def test_training_matches_its_code_version(quick_records: list[dict]) -> None:
    """The result cache hands back records by settings hash, which holds TRAIN_CODE_VERSION but not the
    code. If this fails after an edit, training results changed: bump TRAIN_CODE_VERSION in
    pnas_core/training/train.py (else the cache serves records of the old code) and update GOLDEN. Tolerances
    absorb float noise between CPUs, not a changed schedule, augmentation or loss."""
    assert TrainSettings().settings_hash() == "b14e536e7f1bffbb"  # the paper's defaults
    r = quick_records[0]
    exact = ("cell", "settings_hash", "params", "mult_adds", "curve_epochs")
    assert {k: r[k] for k in exact} == {k: GOLDEN[k] for k in exact}
    assert r["train_loss"] == pytest.approx(GOLDEN["train_loss"], rel=1e-3)
    assert r["val_curve"] == pytest.approx(GOLDEN["val_curve"], abs=0.01)


def test_one_block_cell_trains_far_above_chance(quick_records: list[dict]) -> None:
    r = quick_records[3]
    assert r["status"] == "ok" and r["error"] is None
    assert r["val_acc"] > 0.5  # chance is 0.1
    assert r["cell"] == "0:sep3x3,1:identity" and r["num_blocks"] == 1 and r["epochs"] == 3
    assert r["params"] > 0 and r["mult_adds"] > 0 and r["train_seconds"] > 0
    assert r["dataset"].startswith("digits-1x8x8-1149/288/360-")
    assert r["device"] == "cpu" and set(RECORD_COLUMNS) <= set(r)
    assert math.isfinite(r["train_loss"]) and r["train_loss"] < math.log(10)


def test_different_cells_give_a_spread(quick_records: list[dict]) -> None:
    accs = [r["val_acc"] for r in quick_records]
    assert len(set(accs)) == len(accs)
    assert all(a > 0.3 for a in accs)


def test_cpu_training_is_bitwise_deterministic(quick_records: list[dict]) -> None:
    again = train_candidate(CHEAP_CELLS[0], TrainSettings.from_dict(QUICK))
    first = quick_records[0]
    for key in ("val_acc", "train_loss", "params", "mult_adds", "candidate_seed"):
        assert again[key] == first[key], key


def test_seed_changes_the_result(quick_records: list[dict]) -> None:
    other = train_candidate(CHEAP_CELLS[0], TrainSettings.from_dict({**QUICK, "seed": 1}))
    assert other["candidate_seed"] != quick_records[0]["candidate_seed"]
    assert other["train_loss"] != quick_records[0]["train_loss"]


def test_absurd_learning_rate_diverges_without_crashing() -> None:
    settings = TrainSettings.from_dict({**QUICK, "lr": 1e6, "epochs": 2})
    r = train_candidate("0:max3x3,1:identity", settings)
    assert r["status"] == "diverged"
    assert r["val_acc"] is None and "epoch 1" in r["error"]
    assert r["epochs"] == 1


# --------------------------------------------------------------------------- records


def test_records_round_trip(tmp_path: Path, quick_records: list[dict]) -> None:
    path = tmp_path / "r.parquet"
    write_records(path, quick_records, {"settings": "{}"})
    df = read_records(path)
    assert list(df.columns) == list(RECORD_COLUMNS)
    assert df["val_acc"].tolist() == [r["val_acc"] for r in quick_records]
    assert df["cell"].tolist() == list(CHEAP_CELLS)


def test_records_errors_name_the_file(tmp_path: Path, quick_records: list[dict]) -> None:
    with pytest.raises(PnasError, match=r"records file .*nope.parquet not found"):
        read_records(tmp_path / "nope.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(PnasError, match=r"junk.parquet is corrupt"):
        read_records(tmp_path / "junk.parquet")
    pd.DataFrame({"cell": ["x"], "val_acc": [0.5]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(PnasError, match=r"other.parquet does not have the training-record schema.*cell_id"):
        read_records(tmp_path / "other.parquet")
    bad = dict(quick_records[0], status="weird")
    with pytest.raises(PnasError, match="status 'weird'"):
        write_records(tmp_path / "bad.parquet", [bad])
    assert not (tmp_path / "bad.parquet").exists()


# --------------------------------------------------------------------------- cache


def _key(r: dict) -> tuple:
    return r["cell_id"], r["settings_hash"], r["dataset"], r["seed"]


def test_cache_put_get(tmp_path: Path, quick_records: list[dict]) -> None:
    cache = ResultCache(tmp_path / "cache")
    r = quick_records[0]
    assert cache.get(*_key(r)) is None
    path = cache.put(r)
    assert path == tmp_path / "cache" / cache_key(*_key(r))[:2] / f"{cache_key(*_key(r))}.json"
    assert cache.get(*_key(r)) == r
    assert cache.get(r["cell_id"], r["settings_hash"], r["dataset"], r["seed"] + 1) is None


def test_corrupt_cache_entries_warn_and_miss(tmp_path: Path, quick_records: list[dict]) -> None:
    cache = ResultCache(tmp_path)
    r = quick_records[1]
    path = cache.put(r)
    for damage in ("{truncated", json.dumps({"key": "x", "record": r}), json.dumps({"key": path.stem})):
        path.write_text(damage)
        with pytest.warns(CorruptCacheEntry, match=str(path.name)):
            assert cache.get(*_key(r)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.put(r)
        assert cache.get(*_key(r)) == r


# --------------------------------------------------------------------------- devices


def test_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pick_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    with pytest.raises(PnasError, match="unknown device 'tpu'"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(PnasError, match="CUDA is not available"):
            pick_device("cuda")
    monkeypatch.setenv("PNAS_THREADS", "3")
    assert resolve_threads() == 3
    assert resolve_threads(2) == 2
    monkeypatch.setenv("PNAS_THREADS", "many")
    with pytest.raises(PnasError, match="PNAS_THREADS"):
        resolve_threads()


def test_trains_on_a_fake_cifar10_folder(tmp_path: Path) -> None:
    from test_data import write_fake_cifar  # pytest's prepend import mode puts tests/ on sys.path

    write_fake_cifar(tmp_path)
    settings = TrainSettings.from_dict(
        {"data_root": str(tmp_path), "cells_per_stack": 1, "filters": 4, "epochs": 1, "device": "cpu"}
    )
    r = train_candidate("0:max3x3,1:identity", settings)
    assert r["status"] == "ok" and 0.0 <= r["val_acc"] <= 1.0
    assert r["dataset"].startswith("cifar10-3x32x32-180/20/30-")


def test_cuda_oom_retries_at_half_batch_then_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The retry logic only: the device and the out-of-memory error are simulated."""
    import pnas_core.training.train as train_mod

    tried: list[int] = []

    def fake_train(*args: object) -> dict:
        tried.append(args[5])  # (cell, settings, data, device, seed, batch_size, on_epoch)
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")

    monkeypatch.setattr(train_mod, "pick_device", lambda request: torch.device("cuda", 0))
    monkeypatch.setattr(train_mod, "_train", fake_train)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    r = train_candidate("0:max3x3,1:identity", TrainSettings.from_dict(QUICK))
    assert tried == [32, 16]
    assert r["status"] == "failed" and r["batch_size"] == 16 and r["val_acc"] is None
    assert r["error"].startswith("CUDA out of memory at batch size 16")
    assert r["device"] == "cuda:0"


def test_learning_curve_every_epoch_and_sparse(quick_records) -> None:
    r = quick_records[0]
    assert r["curve_epochs"] == [1, 2, 3] and len(r["val_curve"]) == 3
    assert r["val_curve"][-1] == r["val_acc"]
    assert all(0.0 <= a <= 1.0 for a in r["val_curve"])
    sparse = train_candidate(CHEAP_CELLS[0], TrainSettings.from_dict({**QUICK, "eval_every": 2}))
    # evaluating fewer epochs changes neither training nor the final accuracy (bitwise, on CPU)
    assert sparse["curve_epochs"] == [2, 3]
    assert sparse["val_curve"] == [r["val_curve"][1], r["val_acc"]]
    assert sparse["train_loss"] == r["train_loss"]
    with pytest.raises(PnasError, match="eval_every"):
        TrainSettings.from_dict({"eval_every": 0})
