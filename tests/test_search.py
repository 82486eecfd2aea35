"""The in-process search loop: with a table lookup it makes the workflow's picks on the workflow's
own records; with real training it runs a tiny search (through the result cache)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from workflow_project import TINY

from pnas_core import __version__
from pnas_core.io.records import read_records
from pnas_core.search.benchmark import assemble, load_table, write_table
from pnas_core.search.progressive import TableEvaluator, TrainingEvaluator, run_search
from pnas_core.search.selection import Selection
from pnas_core.space.cells import Space, parse
from pnas_core.surrogate import SurrogateSettings
from pnas_core.training.cost import search_costs
from pnas_core.training.train import load_settings


@pytest.mark.slow
def test_table_lookup_reproduces_the_workflows_picks(finished: Path, tmp_path: Path) -> None:
    run = finished / "results" / "tiny"  # the tiny config's workflow run (tests/conftest.py)
    cfg = yaml.safe_load(TINY.read_text())
    space = Space.from_names(cfg["search"]["ops"], cfg["search"]["max_blocks"])
    records = read_records([run / f"level{b}" / "trained.parquet" for b in (1, 2)])
    table_file = tmp_path / "table.parquet"
    write_table(assemble(records, space, [cfg["seed"]], {}, __version__, partial=True), table_file)
    # restrict=False: a pick outside the workflow's records is an error, not filtered away
    evaluator = TableEvaluator(load_table(table_file), seed=0, restrict=False)
    result = run_search(
        space,
        evaluator,
        cfg["search"]["beam_size"],
        cfg["search"]["predictors"],
        Selection.from_mapping(cfg["search"]),
        SurrogateSettings.from_file(run / "settings" / "surrogate.json"),
        costs=search_costs(load_settings(run / "settings" / "train.json")),
    )
    for level, ours in enumerate(result.candidates, start=1):
        theirs = pq.read_table(run / f"level{level}" / "candidates.parquet")
        assert ours.column("cell").to_pylist() == theirs.column("cell").to_pylist(), f"level {level}"
        ours_score = ours.column("score").to_numpy(zero_copy_only=False)
        theirs_score = theirs.column("score").to_numpy(zero_copy_only=False)
        np.testing.assert_allclose(ours_score, theirs_score, rtol=1e-6)
        if level > 1:
            assert ours.column("params").to_pylist() == theirs.column("params").to_pylist()
    assert len(result.summary) == records["cell"].nunique()


def test_training_loop_runs_a_tiny_search(tmp_path: Path) -> None:
    import torch

    from pnas_core.training.train import TrainSettings

    torch.set_num_threads(1)
    settings = TrainSettings(
        dataset="digits", image_size=8, val_fraction=0.25, cells_per_stack=1, filters=4, epochs=1,
        batch_size=128, lr=0.05, device="cpu",
    )  # fmt: skip
    space = Space.from_names(["max3x3"], 2)
    surrogate = SurrogateSettings(ensemble_size=2, epochs=5, max_blocks=2)
    cache = tmp_path / "cache"
    result = run_search(space, TrainingEvaluator(settings, cache_dir=cache), 2, surrogate=surrogate)
    summary = result.summary
    assert summary["level"].tolist() == [1, 1, 1, 2, 2]
    assert summary["models_trained"].tolist() == [1, 2, 3, 4, 5]
    assert (summary["status"] == "ok").all() and summary["val_acc"].between(0, 1).all()
    level1 = set(summary.loc[summary["level"] == 1, "cell"])
    for _, row in summary[summary["level"] == 2].iterrows():
        assert parse(row["parent"]).text in level1
        assert row["cell"] in {c.text for c in space.children(parse(row["parent"]))}
    scores = summary.loc[summary["level"] == 2, "score"].to_numpy()
    assert np.all(np.diff(scores) <= 0)  # best first
    assert result.best["val_acc"] == summary["val_acc"].max()
    assert len(list(cache.rglob("*.json"))) == 5

    # a second run reads every record back from the cache: same cells, same accuracies
    again = run_search(space, TrainingEvaluator(settings, cache_dir=cache), 2, surrogate=surrogate)
    pd.testing.assert_frame_equal(
        again.summary[["cell", "val_acc", "score"]], summary[["cell", "val_acc", "score"]]
    )
