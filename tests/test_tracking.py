"""``pnas track``: the tiny finished run logged to MLflow (SQLite) and TensorBoard, read back offline."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from pnas_core.cli import main
from pnas_core.cli.track_cmds import require_backend
from pnas_core.errors import PnasError
from pnas_core.results import load


def check_tracking(out: Path) -> None:
    """The tracking folder of results folder ``out`` holds what the run found."""
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = pd.read_parquet(out / "summary.parquet")
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'tracking' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(out.name)  # the run's name
    runs = client.search_runs([experiment.experiment_id], max_results=10000)
    tops = {r.info.run_name: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert sorted(tops) == ["random_search", "search"]
    parent = tops["search"]
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    candidates = [r for r in nested if r.info.run_name != "final"]
    (final,) = [r for r in nested if r.info.run_name == "final"]
    assert len(candidates) == len(summary)
    assert parent.data.metrics["best_val_acc"] == summary["val_acc"].max()
    assert parent.data.params["best_cell"] == (out / "best_cell.txt").read_text().splitlines()[0]
    by_order = {int(r.data.params["models_trained"]): r for r in candidates}
    for row in summary.itertuples():
        run = by_order[row.models_trained]
        assert run.data.params["cell"] == row.cell and int(run.data.params["level"]) == row.level
        assert run.data.metrics["val_acc"] == row.val_acc and run.data.metrics["params"] == row.params
        assert run.data.params["train.epochs"] == str(row.epochs)
        history = client.get_metric_history(run.info.run_id, "val_curve")
        assert [(m.step, m.value) for m in history] == list(zip(row.curve_epochs, row.val_curve, strict=True))
    # the random-search baseline: its own parent run, a nested run per model, in sample order
    baseline = load(out).baselines["random_search"]
    models = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == tops["random_search"].info.run_id]
    assert len(runs) == len(summary) + 2 + len(baseline) + 1 and len(models) == len(baseline)
    assert tops["random_search"].data.metrics["best_val_acc"] == baseline["val_acc"].max()
    by_order = {int(r.data.params["models_trained"]): r for r in models}
    for row in baseline.itertuples():
        assert by_order[row.models_trained].data.params["cell"] == row.cell
        assert by_order[row.models_trained].data.metrics["val_acc"] == row.val_acc
    metrics = json.loads((out / "final" / "metrics.json").read_text())
    assert final.data.metrics["test_acc"] == metrics["test_acc"]
    curve = pd.read_parquet(out / "final" / "curve.parquet")
    loss = client.get_metric_history(final.info.run_id, "curve.loss")
    assert [m.value for m in sorted(loss, key=lambda m: m.step)] == curve["loss"].tolist()
    (artifact,) = client.list_artifacts(final.info.run_id)
    local = Path(client.download_artifacts(final.info.run_id, artifact.path, str(out.parent)))
    assert local.read_bytes() == (out / "final" / "model.pt").read_bytes()

    search = EventAccumulator(str(out / "tracking" / "tb" / "search"))
    search.Reload()
    acc = search.Scalars("search/val_acc")
    assert [e.step for e in acc] == summary["models_trained"].tolist()
    assert [e.value for e in acc] == pytest.approx(summary["val_acc"].tolist(), abs=1e-6)  # float32
    random_tb = EventAccumulator(str(out / "tracking" / "tb" / "random_search"))
    random_tb.Reload()  # the same tags as the search's, so TensorBoard draws both on one chart
    best = random_tb.Scalars("search/best_val_acc")
    assert [e.step for e in best] == baseline["models_trained"].tolist()
    assert best[-1].value == pytest.approx(baseline["val_acc"].max(), abs=1e-6)
    final_tb = EventAccumulator(str(out / "tracking" / "tb" / "final"))
    final_tb.Reload()
    assert math.isclose(final_tb.Scalars("final/test_acc")[0].value, metrics["test_acc"], abs_tol=1e-6)


def test_track_the_tiny_run(finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tiny"
    shutil.copytree(
        finished / "results" / "tiny", out, ignore=shutil.ignore_patterns("cache", "logs", "report*")
    )
    assert main(["track", str(out), "--mlflow", "--tensorboard"]) == 0
    assert "random search models" in capsys.readouterr().out
    check_tracking(out)
    # a second run is refused with one line, and the first one's logs stay as they were
    db = (out / "tracking" / "mlflow.db").read_bytes()
    assert main(["track", str(out), "--mlflow"]) == 2
    assert "tracking exists: remove it to track this run again" in capsys.readouterr().err
    assert (out / "tracking" / "mlflow.db").read_bytes() == db
    assert main(["track", str(out)]) == 2
    assert "give --mlflow, --tensorboard or both" in capsys.readouterr().err


def test_a_missing_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)  # what an install without the extra sees
    with pytest.raises(
        PnasError,
        match=r"^pnas track --mlflow needs mlflow, which is not installed: pip install 'pnas\[tracking\]'$",
    ):
        require_backend("mlflow")
    assert main(["track", "results/nowhere", "--mlflow"]) == 2  # before any read
    require_backend("tensorboard")
