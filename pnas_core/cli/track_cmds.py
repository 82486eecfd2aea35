"""``pnas track``: log a finished run to MLflow and TensorBoard (the optional ``tracking`` extra).

Reads the run with :func:`pnas_core.results.load` (plus ``settings/train.json``, ``final/settings.json``
and ``final/curve.parquet`` where present) and writes ``results/<name>/tracking/``:

- ``mlflow.db`` (SQLite; ``mlflow ui --backend-store-uri sqlite:///results/<name>/tracking/mlflow.db``)
  and ``artifacts/``: one parent run for the search, one nested run per trained candidate (cell,
  level, settings as parameters; the learning curve by epoch, val_acc, params, mult_adds,
  train_seconds as metrics) and a nested ``final`` run (its metrics, per-epoch curve, model.pt);
  beside it one parent run per baseline the run trained (``random_search``), its models nested the
  same way, so the UI compares the search with its baseline;
- ``tb/``: TensorBoard scalars (``tensorboard --logdir results/<name>/tracking/tb``): the search and
  each baseline as runs of their own under the same tags, so their curves share a chart.

An existing tracking folder is refused (remove it to track again), so no run is logged twice; a
failed write removes what it began.
"""

from __future__ import annotations

import argparse
import importlib
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pnas_core.errors import PnasError

TRACKING_DIR = "tracking"
EXTRA_INSTALL = "pip install 'pnas[tracking]'"
BACKENDS = {"mlflow": ("mlflow", "sqlalchemy", "alembic"), "tensorboard": ("tensorboard",)}
"""Each back-end's flag and the modules it needs (the ``tracking`` extra in pyproject.toml)."""
CANDIDATE_PARAMS = (
    "level",
    "models_trained",
    "cell",
    "cell_id",
    "parent",
    "status",
    "epochs",
    "batch_size",
    "device",
    "seed",
    "candidate_seed",
    "dataset",
    "settings_hash",
)
CANDIDATE_METRICS = ("val_acc", "params", "mult_adds", "train_seconds", "train_loss")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``track``."""
    p = sub.add_parser(
        "track", help="log a finished run's candidates and final network to MLflow and/or TensorBoard"
    )
    p.add_argument("results", help="the run's results folder, results/<name>")
    p.add_argument("--mlflow", action="store_true", help="write tracking/mlflow.db and tracking/artifacts")
    p.add_argument("--tensorboard", action="store_true", help="write TensorBoard scalars to tracking/tb")
    p.set_defaults(func=run)


def require_backend(flag: str) -> None:
    """Import ``flag``'s modules; a missing one is a one-line error naming the extra to install."""
    for module in BACKENDS[flag]:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise PnasError(
                f"pnas track --{flag} needs {module}, which is not installed: {EXTRA_INSTALL}"
            ) from exc


def run(args: argparse.Namespace) -> int:
    """Write the tracking folder of a finished run."""
    from pnas_core.results import load

    flags = [f for f in BACKENDS if getattr(args, f)]
    if not flags:
        raise PnasError("pnas track: give --mlflow, --tensorboard or both")
    for flag in flags:
        require_backend(flag)
    results = load(args.results)
    root = results.folder
    out = root / TRACKING_DIR
    if out.exists():
        raise PnasError(f"{out} exists: remove it to track this run again (no run is logged twice)")
    extras = run_extras(root)
    out.mkdir()
    try:
        if "mlflow" in flags:
            log_mlflow(results, extras, out)
        if "tensorboard" in flags:
            log_tensorboard(results, extras, out / "tb")
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    logged = [f"{len(results.summary)} candidates"]
    logged += [f"{len(models)} {name.replace('_', ' ')} models" for name, models in results.baselines.items()]
    final = " and the final network" if results.final else ""
    print(f"{', '.join(logged)}{final} -> {out}")
    return 0


def run_extras(root: Path) -> dict[str, Any]:
    """The run's settings (``train``, ``final``: dicts, empty when absent) and the final network's
    per-epoch curve (``curve``: a DataFrame, or None)."""
    import pandas as pd

    from pnas_core.io.text_io import read_json

    def settings(path: Path) -> dict[str, Any]:
        found = read_json(path, "settings file") if path.exists() else {}
        if not isinstance(found, dict):
            raise PnasError(f"settings file {path} does not hold a JSON object")
        return found

    curve_path = root / "final" / "curve.parquet"
    return {
        "train": settings(root / "settings" / "train.json"),
        "final": settings(root / "final" / "settings.json"),
        "curve": pd.read_parquet(curve_path) if curve_path.exists() else None,
    }


def present(value: Any) -> bool:
    """Whether a summary field holds a value (not None or NaN)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def number(value: Any) -> float | None:
    """A finite float, or None for a missing or non-finite value."""
    if not present(value):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def candidate_curve(row: Any) -> list[tuple[int, float]]:
    """(epoch, validation accuracy) pairs of a candidate's learning curve."""
    curve, epochs = row.get("val_curve"), row.get("curve_epochs")
    if curve is None or epochs is None:
        return []
    return [(int(e), float(v)) for e, v in zip(epochs, curve, strict=True) if math.isfinite(float(v))]


def search_label(row: Any) -> str:
    """A search candidate's run name: its level, its place in training order and its cell."""
    return f"L{int(row['level'])} #{int(row['models_trained'])} {row['cell']}"


def log_mlflow(results: Any, extras: dict[str, Any], out: Path) -> None:
    """One parent run, a nested run per trained candidate, and a nested final run; a parent run per
    baseline with a nested run per model."""
    import time

    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{(out / 'mlflow.db').resolve()}")
    experiment = client.create_experiment(
        results.folder.resolve().name, artifact_location=(out / "artifacts").resolve().as_uri()
    )
    now = int(time.time() * 1000)

    def new_run(name: str, parent: str | None, params: dict[str, Any], metrics: list[Metric]) -> str:
        tags = {"mlflow.runName": name, **({"mlflow.parentRunId": parent} if parent else {})}
        run_id = client.create_run(experiment, tags=tags, run_name=name).info.run_id
        params = {k: v for k, v in params.items() if present(v)}
        client.log_batch(
            run_id,
            metrics=metrics,
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag("pnas.results", str(results.folder))],
        )
        return run_id

    def scalars(values: dict[str, Any]) -> list[Metric]:
        return [Metric(k, x, now, 0) for k, v in values.items() if (x := number(v)) is not None]

    def model_runs(models: Any, parent: str, label: Callable[[Any], str]) -> list[str]:
        """A nested run per trained model (a row of ``models``), named by ``label(row)``."""
        ids = []
        for _, row in models.iterrows():
            params = {k: row.get(k) for k in CANDIDATE_PARAMS}
            metrics = scalars({k: row.get(k) for k in CANDIDATE_METRICS})
            metrics += [Metric("val_curve", v, now, e) for e, v in candidate_curve(row)]
            ids.append(new_run(label(row), parent, {**params, **train}, metrics))
        return ids

    train = {f"train.{k}": v for k, v in extras["train"].items()}
    best = {"best_val_acc": results.best["val_acc"], "models_trained": len(results.summary)}
    parent = new_run("search", None, {"best_cell": results.best_cell, **train}, scalars(best))
    runs = [parent, *model_runs(results.summary, parent, search_label)]
    for name, models in results.baselines.items():
        ok = models[models["status"] == "ok"]
        top = {"best_val_acc": ok["val_acc"].max() if len(ok) else None, "models_trained": len(models)}
        baseline = new_run(name, None, dict(train), scalars(top))
        runs += [
            baseline,
            *model_runs(models, baseline, lambda row: f"#{int(row['models_trained'])} {row['cell']}"),
        ]
    if results.final is not None:
        final_params = {f"final.{k}": v for k, v in extras["final"].items()}
        metrics = scalars({k: v for k, v in results.final.items() if isinstance(v, int | float)})
        curve = extras["curve"]
        if curve is not None:
            for column in (c for c in curve.columns if c != "epoch"):
                metrics += [
                    Metric(f"curve.{column}", float(v), now, int(e))
                    for e, v in zip(curve["epoch"], curve[column], strict=True)
                    if math.isfinite(float(v))
                ]
        final_id = new_run("final", parent, {"cell": results.final.get("cell"), **final_params}, metrics)
        model = results.folder / "final" / "model.pt"
        if model.exists():
            client.log_artifact(final_id, str(model))
        runs.append(final_id)
    for run_id in runs:
        client.set_terminated(run_id)


def log_tensorboard(results: Any, extras: dict[str, Any], out: Path) -> None:
    """Scalars by models trained (``search/*``: each candidate's val_acc, the best so far, params,
    train_seconds; in ``search/`` for the search, in ``<baseline>/`` for each baseline) and by epoch (``final/*``: the final network's curve), and the final test accuracy."""
    from torch.utils.tensorboard import SummaryWriter

    for name, models in {"search": results.summary, **results.baselines}.items():
        with SummaryWriter(str(out / name)) as writer:
            best = -math.inf
            for _, row in models.iterrows():
                step = int(row["models_trained"])
                acc = number(row.get("val_acc"))
                if acc is not None:
                    best = max(best, acc)
                    writer.add_scalar("search/val_acc", acc, step)
                    writer.add_scalar("search/best_val_acc", best, step)
                for key in ("params", "mult_adds", "train_seconds"):
                    if (x := number(row.get(key))) is not None:
                        writer.add_scalar(f"search/{key}", x, step)
    if results.final is None:
        return
    with SummaryWriter(str(out / "final")) as writer:
        curve = extras["curve"]
        if curve is not None:
            for _, row in curve.iterrows():
                for column in (c for c in curve.columns if c != "epoch"):
                    if (x := number(row[column])) is not None:
                        writer.add_scalar(f"final/{column}", x, int(row["epoch"]))
        if (x := number(results.final.get("test_acc"))) is not None:
            writer.add_scalar("final/test_acc", x, 0)
