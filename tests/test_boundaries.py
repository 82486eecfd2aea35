"""Every file read is checked where it enters: candidates, scored tables, training records, cache
entries and surrogate manifests. A bad row ends in one line naming the file, the row and the value;
a cache entry whose content is not its key is retrained, reported and replaced."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from synthetic import valid_record

from pnas_core.cli import main
from pnas_core.errors import PnasError
from pnas_core.io.records import read_records, write_records
from pnas_core.search.beam import scored_schema
from pnas_core.space.cells import Space, canonical_texts, cell_id, parse, tokens_to_texts
from pnas_core.training.cache import CorruptCacheEntry, ResultCache, cache_key
from pnas_core.training.shard import train_or_get
from pnas_core.training.train import TrainSettings

CELLS = ["0:sep3x3,1:identity", "0:max3x3,1:identity", "0:avg3x3,1:sep5x5", "1:identity,1:max3x3"]
SWAPPED = "1:identity,0:sep3x3"
"""CELLS[0] with its halves in the other order: the same cell."""
TINY = {
    "dataset": "digits",
    "cells_per_stack": 1,
    "filters": 4,
    "epochs": 1,
    "batch_size": 64,
    "device": "cpu",
}


def scored(cells: list[str], **columns: list) -> pa.Table:
    """A valid costed scored table of ``cells`` (one xgb predictor), with ``columns`` replaced."""
    n = len(cells)
    data = {
        "cell": cells,
        "cell_id": [cell_id(parse(c).text) for c in cells],
        "num_blocks": [1] * n,
        "parent": [None] * n,
        "pred_xgb": np.linspace(0.5, 0.9, n).tolist(),
        "std_xgb": [0.0] * n,
        "pred_mean": np.linspace(0.5, 0.9, n).tolist(),
        "params": [1000 + i for i in range(n)],
        "mult_adds": [10_000 + i for i in range(n)],
    }
    data.update(columns)
    schema = scored_schema(["xgb"], costed=True)
    return pa.table({f.name: pa.array(data[f.name], f.type) for f in schema})


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"cell": ["../../../etc/passwd", *CELLS[1:]]}, "row 0: block 1 ('../../../etc/passwd')"),
        (
            {"cell_id": ["0123456789abcdef", *[cell_id(c) for c in CELLS[1:]]]},
            "row 0: cell_id '0123456789abcdef'",
        ),
        (
            {
                "cell": [CELLS[0], CELLS[1], SWAPPED, CELLS[3]],
                "cell_id": [cell_id(c) for c in (CELLS[:2] + CELLS[:1] + CELLS[3:])],
            },
            "row 2: repeats row 0",
        ),
        ({"params": [1000, -5, 1002, 1003]}, "row 1: params holds -5"),
        ({"mult_adds": [1, 2, 3, -1]}, "row 3: mult_adds holds -1"),
        ({"num_blocks": [1, 2, 1, 1]}, "row 1: num_blocks 2 but cell"),
        ({"pred_mean": [0.5, float("nan"), 0.6, 0.7]}, "row 1: pred_mean holds nan"),
        ({"std_xgb": [0.0, 0.0, -0.1, 0.0]}, "row 2: std_xgb holds -0.1"),
    ],
)
def test_select_refuses_a_bad_scored_table(
    columns: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scored.parquet"
    pq.write_table(scored(CELLS, **columns), path)
    code, err = run(capsys, "select", "--scored", str(path), "--k", "2", "--out", str(tmp_path / "c.parquet"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"scored file {path}, {message}" in err, err
    assert not (tmp_path / "c.parquet").exists()


def test_select_refuses_wrong_types_and_missing_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = scored(CELLS)
    cases = {
        "text": good.set_column(good.schema.get_field_index("params"), "params", pa.array(["1k"] * 4)),
        "fraction": good.set_column(good.schema.get_field_index("params"), "params", pa.array([1.5] * 4)),
        "missing": good.drop(["cell_id"]),
    }
    messages = {
        "text": "column 'params' holds string, expected integers",
        "fraction": "row 0: params holds 1.5, expected an integer",
        "missing": "lacks column(s) cell_id",
    }
    for name, table in cases.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path)
        code, err = run(
            capsys, "select", "--scored", str(path), "--k", "2", "--out", str(tmp_path / "c.parquet")
        )
        assert code == 2 and messages[name] in err and str(path) in err, err


def test_candidates_are_checked_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.json").write_text(json.dumps(TINY))
    for cells, message in (
        (["0:sep3x3,1:identity", "../../../etc/passwd"], "row 1: block 1 ('../../../etc/passwd')"),
        ([CELLS[0], SWAPPED], "row 1: repeats row 0 (cell '0:sep3x3,1:identity')"),
    ):
        path = tmp_path / "c.parquet"
        pq.write_table(pa.table({"cell": cells}), path)
        argv = [
            "train",
            "--candidates",
            str(path),
            "--settings",
            str(tmp_path / "s.json"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "r.parquet"),
            "--no-progress",
        ]
        code, err = run(capsys, *argv)
        assert code == 2 and f"candidates file {path}, {message}" in err, err
        assert not (tmp_path / "cache").exists()  # nothing trained


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"val_acc": 5.0}, "row 1: val_acc holds 5.0, expected a finite number in [0, 1]"),
        ({"val_curve": [0.5, 1.5]}, "row 1: val_curve holds 1.5"),
        ({"params": -3}, "row 1: params holds -3"),
        ({"train_seconds": float("inf")}, "row 1: train_seconds holds inf"),
        ({"cell_id": "0123456789abcdef"}, "row 1: cell_id '0123456789abcdef' is not the id of cell"),
        ({"cell": CELLS[0]}, "row 1: repeats row 0"),
        ({"status": "ok", "val_acc": None}, "row 1: status 'ok' without val_acc"),
    ],
)
def test_records_are_checked_by_every_reader(
    changes: dict, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "records.parquet"
    bad = valid_record(CELLS[1]) | changes
    if "cell" in changes:
        bad["cell_id"] = cell_id(changes["cell"])
    table = pa.Table.from_pylist(
        [valid_record(CELLS[0]), bad, valid_record(CELLS[2])], schema=pq.read_schema(_schema_file(tmp_path))
    )
    pq.write_table(table, path)
    with pytest.raises(
        PnasError, match=f"records file {path}, {message}".replace("[", r"\[").replace("(", r"\(")
    ):
        read_records(path)
    code, err = run(
        capsys, "fit-surrogate", "--records", str(path), "--predictors", "xgb", "--out", str(tmp_path / "s")
    )
    assert code == 2 and f"records file {path}, {message}" in err, err


def _schema_file(tmp_path: Path) -> Path:
    """A records file written by pnas (for its schema)."""
    path = tmp_path / "schema.parquet"
    write_records(path, [valid_record(CELLS[3])])
    return path


def test_cache_entry_whose_content_is_not_its_key_is_retrained_and_replaced(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    settings = TrainSettings.from_dict(TINY)
    data = settings.load_data()
    cache = ResultCache(tmp_path / "cache")
    good = parse(CELLS[1])
    key = (good.id, settings.settings_hash(), data.fingerprint, settings.seed)
    planted = valid_record(CELLS[1], settings_hash=key[1], dataset=key[2], seed=key[3])
    for content, why in (
        (dict(planted, cell="../../../etc/passwd"), "'../../../etc/passwd'"),
        (dict(planted, cell=CELLS[0]), f"is not the id of cell {CELLS[0]!r}"),
        (dict(planted, val_acc=5.0), "val_acc holds 5.0"),
    ):
        path = cache.path(cache_key(*key))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"key": path.stem, "record": content}))
        got, how, messages = train_or_get(CELLS[1], settings, data, cache)
        assert how == "trained" and got["cell"] == good.text and 0 <= got["val_acc"] <= 1
        assert len(messages) == 1 and str(path) in messages[0] and why in messages[0], messages
        assert json.loads(path.read_text())["record"] == got  # replaced: never served again
        with warnings.catch_warnings():
            warnings.simplefilter("error", CorruptCacheEntry)
            assert train_or_get(CELLS[1], settings, data, cache)[:2] == (got, "cached")


def test_manifest_names_only_known_predictors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pnas_core.surrogate import SurrogateSettings, make_predictor
    from pnas_core.surrogate.bundle import save_predictors

    cells = tokens_to_texts(Space.from_names(["sep3x3", "identity"]).one_block_tokens())
    xgb = make_predictor("xgb", SurrogateSettings(xgb={"n_estimators": 3})).fit(
        cells, np.linspace(0.4, 0.8, len(cells))
    )
    surrogate = tmp_path / "run" / "surrogate"
    save_predictors({"xgb": xgb}, surrogate)
    save_predictors({"xgb": xgb}, tmp_path / "outside")
    shutil.copytree(tmp_path / "outside" / "xgb", tmp_path / "run" / "outside_xgb")
    parents = tmp_path / "parents.parquet"
    assert main(["enumerate", "--ops", "sep3x3", "identity", "--out", str(parents)]) == 0
    score = ["expand-score", "--parents", str(parents), "--surrogate", str(surrogate), "--ops"]
    score += ["sep3x3", "identity", "--out", str(tmp_path / "scored.parquet")]
    for names, message in (
        (["../outside_xgb"], "names unknown predictor '../outside_xgb'"),
        (["xgb", "xgb"], "names a predictor twice"),
    ):
        (surrogate / "manifest.json").write_text(json.dumps({"predictors": names}))
        code, err = run(capsys, *score)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    (surrogate / "manifest.json").write_text(json.dumps({"predictors": ["rnn"]}))
    (surrogate / "xgb").rename(surrogate / "rnn")  # a folder named rnn holding an xgb predictor
    code, err = run(capsys, *score)
    assert code == 2 and "holds a xgb predictor, not rnn" in err, err


def test_canonical_texts_agree_with_parse() -> None:
    rng = np.random.default_rng(0)
    space = Space.from_names(None)
    for b in range(1, 6):
        written = [
            ";".join(",".join(reversed(h.split(","))) if k % 2 else h for k, h in enumerate(t.split(";")))
            for t in tokens_to_texts(space.sample_tokens(b, 200, rng))
        ]
        assert canonical_texts(written) == [parse(t).text for t in written]
    with pytest.raises(PnasError, match=r"row 1: block 2 \('0:sep3x3,3:identity'\): input 3 out of range"):
        canonical_texts(["0:sep3x3,1:identity", "0:sep3x3,1:identity;0:sep3x3,3:identity"])


def test_benchmark_table_rows_and_metadata_are_checked(tmp_path: Path) -> None:
    from pnas_core.search.benchmark import load_table, table_path

    shipped = pq.read_table(table_path("digits_b2"))
    index = shipped.schema.get_field_index("val_acc")
    accuracies = shipped.column("val_acc").to_pylist()
    accuracies[7] = 5.0
    bad_row = shipped.set_column(index, shipped.schema.field("val_acc"), pa.array(accuracies, pa.float64()))
    bad_meta = shipped.replace_schema_metadata(shipped.schema.metadata | {b"pnas.seeds": b"[0, oops"})
    for table, message in (
        (bad_row, "row 7: val_acc holds 5.0"),
        (bad_meta, "has unreadable metadata: Expecting value"),
    ):
        path = tmp_path / "table.parquet"
        pq.write_table(table, path)
        with pytest.raises(PnasError, match=re.escape(f"benchmark table {path}") + ".*" + re.escape(message)):
            load_table(path)
