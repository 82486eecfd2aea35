"""Benchmark tables: the cells they enumerate, assembly from records, loading, and the shipped table
(schema, size, and one row retrained bitwise on CPU from the table's own metadata)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pnas_core.errors import PnasError
from pnas_core.io.records import RECORD_COLUMNS
from pnas_core.search.benchmark import (
    TABLE_SCHEMA,
    assemble,
    bundled_tables,
    enumerate_cells,
    load_table,
    table_path,
    write_table,
)
from pnas_core.space.cells import Space, canonical_tokens, cell_id, parse, unique_rows

DIGITS_B2_CELLS = 36 + 2178


def brute_force_cells(space: Space) -> set[str]:
    """Canonical texts of every block sequence of 1..B blocks (no expansion shortcut)."""
    out = set()
    for b in range(1, space.max_blocks + 1):
        tables = [space.block_table(j) for j in range(1, b + 1)]
        rows = np.array([np.concatenate(blocks) for blocks in itertools.product(*tables)])
        out |= {parse_tokens(r) for r in unique_rows(canonical_tokens(rows))}
    return out


def parse_tokens(row: np.ndarray) -> str:
    from pnas_core.space.cells import Cell

    return Cell.from_tokens(row).text


@pytest.mark.parametrize(
    "ops", [["max3x3"], ["sep3x3", "identity"], ["sep3x3", "conv7x1", "identity", "max3x3"]]
)
def test_enumerate_cells_is_every_distinct_cell_once(ops: list[str]) -> None:
    space = Space.from_names(ops, 2)
    cells = enumerate_cells(space)
    assert len(cells) == len(set(cells))
    assert set(cells) == brute_force_cells(space)
    assert all(parse(c).text == c for c in cells)
    assert [c.count(";") for c in cells] == sorted(c.count(";") for c in cells)  # smallest first
    if len(ops) == 4:
        assert len(cells) == DIGITS_B2_CELLS


def fake_records(space: Space, seeds: list[int]) -> pd.DataFrame:
    """Records-shaped rows (assembly and loading logic only; nothing here is trained)."""
    rows = []
    for k, text in enumerate(enumerate_cells(space)):
        for seed in seeds:
            acc = 0.5 + 0.001 * k + 0.01 * seed
            rows.append(
                dict.fromkeys(RECORD_COLUMNS)
                | dict(
                    cell=text,
                    cell_id=cell_id(text),
                    num_blocks=text.count(";") + 1,
                    val_acc=acc,
                    val_curve=[acc / 2, acc],
                    curve_epochs=[1, 2],
                    params=100 + k,
                    mult_adds=1000 + k,
                    train_seconds=0.5,
                    seed=seed,
                    dataset="digits-x",
                    settings_hash="h" * 16,
                    status="ok",
                )
            )
    return pd.DataFrame(rows)


def write_and_path(table, tmp_path):
    """``table`` written to a file in ``tmp_path``, and that file."""
    path = tmp_path / "plain.parquet"
    write_table(table, path)
    return path


def test_assemble_and_load_round_trip(tmp_path) -> None:
    space = Space.from_names(["max3x3"], 2)
    records = fake_records(space, [0, 1])
    shuffled = records.sample(frac=1, random_state=0)
    table = assemble(shuffled, space, [0, 1], {"epochs": 2, "seed": 0}, "9.9", build_cpu="cpu-x", threads=3)
    path = tmp_path / "t.parquet"
    write_table(table, path)
    loaded = load_table(path)
    assert loaded.rows.shape == (2 * len(enumerate_cells(space)), len(TABLE_SCHEMA))
    assert loaded.rows["num_blocks"].is_monotonic_increasing
    assert (loaded.seeds, loaded.ops, loaded.max_blocks, loaded.complete) == ((0, 1), ("max3x3",), 2, True)
    assert loaded.settings == {"epochs": 2}  # the seed is per row, not in the settings
    assert loaded.train_settings(1) == {"epochs": 2, "seed": 1}
    assert (loaded.settings_hash, loaded.dataset, loaded.version) == ("h" * 16, "digits-x", "9.9")
    assert (loaded.build_cpu, loaded.threads) == ("cpu-x", 3)  # what a retrain needs beside the settings
    assert load_table(write_and_path(assemble(records, space, [0, 1], {}, "9.9"), tmp_path)).threads is None
    by_cell = records.set_index(["cell", "seed"])["val_acc"]
    expected = [[by_cell[c, s] for s in (0, 1)] for c in loaded.cells["cell"]]
    np.testing.assert_array_equal(loaded.accuracy, expected)


def test_assemble_refuses_missing_runs_unless_partial(tmp_path) -> None:
    space = Space.from_names(["max3x3"], 2)
    records = fake_records(space, [0, 1])
    dropped = records.iloc[3]
    with pytest.raises(PnasError, match=r"records lack 1 of \d+ \(cell, seed\) runs"):
        assemble(records.drop(index=3), space, [0, 1], {}, "v")
    table = assemble(records.drop(index=3), space, [0, 1], {}, "v", partial=True)
    write_table(table, tmp_path / "p.parquet")
    loaded = load_table(tmp_path / "p.parquet")
    assert not loaded.complete
    assert dropped["cell"] not in set(loaded.cells["cell"])
    assert len(loaded.cells) == len(enumerate_cells(space)) - 1


def test_load_table_errors_name_the_problem(tmp_path) -> None:
    with pytest.raises(PnasError, match="neither a file nor a bundled table"):
        load_table("no_such_table")
    space = Space.from_names(["max3x3"], 2)
    table = assemble(fake_records(space, [0]), space, [0], {}, "v")
    pq.write_table(table.slice(0, 5), tmp_path / "short.parquet")
    with pytest.raises(PnasError, match="needs one for each of"):
        load_table(tmp_path / "short.parquet")
    pq.write_table(table.drop_columns(["status"]), tmp_path / "cols.parquet")
    with pytest.raises(PnasError, match="benchmark schema"):
        load_table(tmp_path / "cols.parquet")


def test_shipped_table_has_the_documented_schema_and_size() -> None:
    assert "digits_b2" in bundled_tables()
    table = load_table("digits_b2")
    assert list(table.rows.columns) == TABLE_SCHEMA.names
    assert table.ops == ("sep3x3", "conv7x1", "identity", "max3x3")
    assert table.max_blocks == 2
    assert table.settings_hash == "42fdea1049afc588"
    assert table.dataset.startswith("digits-")
    assert table.complete and table.seeds == (0, 1) and table.build_cpu
    assert table.threads == 1  # the workflow's train_threads when it was built (recorded since issue 25)
    assert len(table.rows) == DIGITS_B2_CELLS * 2
    ok = table.rows[table.rows["status"] == "ok"]
    assert ok["val_acc"].between(0, 1).all()
    assert (ok["val_curve"].map(lambda c: c[-1]) == ok["val_acc"]).all()
    settings = json.loads(pq.read_schema(table_path("digits_b2")).metadata[b"pnas.settings"])
    assert "seed" not in settings


def test_a_shipped_row_retrains_bitwise_on_cpu() -> None:
    """Any row retrains from the table's metadata alone: the same network, data and schedule
    everywhere; the same curve bit for bit on a CPU with the table's kernel path (elsewhere float
    rounding differs and SGD drifts apart, so that part is skipped, naming both machines)."""
    import torch

    from pnas_core.devices import cpu_fingerprint
    from pnas_core.training.train import TrainSettings, train_candidate

    table = load_table("digits_b2")
    ok = table.rows[table.rows["status"] == "ok"]
    row = ok.loc[ok["train_seconds"].idxmin()]
    settings = TrainSettings.from_dict({**table.train_settings(int(row["seed"])), "device": "cpu"})
    assert settings.settings_hash() == table.settings_hash
    threads = torch.get_num_threads()
    torch.set_num_threads(table.threads)  # the torch threads per training the table records
    try:
        record = train_candidate(row["cell"], settings)
    finally:
        torch.set_num_threads(threads)
    assert record["dataset"] == table.dataset
    assert (record["params"], record["mult_adds"]) == (row["params"], row["mult_adds"])
    assert record["curve_epochs"] == list(row["curve_epochs"])
    here = cpu_fingerprint()
    if table.build_cpu != here:
        pytest.skip(f"table built on '{table.build_cpu}', this CPU is '{here}': bitwise needs the same")
    assert record["val_acc"] == row["val_acc"]
    assert record["val_curve"] == list(row["val_curve"])


@pytest.mark.slow
def test_workflow_builds_a_table_through_the_shared_cache(tmp_path) -> None:
    """bench_table on a one-op space: every cell once per seed, through train_shard and the cache."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    repo = Path(__file__).resolve().parents[1]
    for sub in ("workflow", "config"):
        shutil.copytree(repo / sub, tmp_path / sub, ignore=shutil.ignore_patterns("__pycache__"))
    cfg = yaml.safe_load((repo / "tests" / "configs" / "tiny.yaml").read_text())
    cfg["search"]["ops"] = ["max3x3"]
    cfg["benchmark"] = {"seeds": [0, 3]}
    (tmp_path / "bench.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "bench_table", "--cores", "2", "--configfile", "bench.yaml"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = load_table(tmp_path / "results" / "tiny" / "bench" / "table.parquet")
    space = Space.from_names(["max3x3"], 2)
    assert table.complete and table.seeds == (0, 3) and table.ops == ("max3x3",)
    assert len(table.rows) == 2 * len(enumerate_cells(space))
    assert all(table.settings[k] == v for k, v in cfg["train"].items())
    assert (table.rows["status"] == "ok").all()
    assert (table.accuracy[:, 0] != table.accuracy[:, 1]).any()  # the training seed matters
    entries = list((tmp_path / "results" / "cache").rglob("*.json"))
    assert len(entries) == len(table.rows)
    rerun = subprocess.run([*cmd, "-n"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
