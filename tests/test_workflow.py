"""End to end through Snakemake (not by calling functions): the tiny config's whole DAG (the session's
``finished`` project, tests/conftest.py), reruns, a deleted shard, kill -9 and resume, bad configs."""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_project import REPO, TINY, make_project, planned_jobs, snakemake

from pnas_core.errors import PnasError
from pnas_core.results import load as load_results
from pnas_core.space.cells import parse

pytestmark = pytest.mark.slow


def train_log_counts(root: Path) -> tuple[int, int]:
    """(trained, cached) candidate lines over every training log of the tiny run."""
    trained = cached = 0
    for log in (root / "results" / "tiny" / "logs").rglob("train_shard*.log"):
        text = log.read_text()
        trained += len(re.findall(r"\] trained ", text))
        cached += len(re.findall(r"\] cached ", text))
    return trained, cached


def test_outputs_of_every_level(finished: Path) -> None:
    cfg = yaml.safe_load(TINY.read_text())
    out = finished / "results" / "tiny"
    k, big_b = cfg["search"]["beam_size"], cfg["search"]["max_blocks"]
    n_ops = len(cfg["search"]["ops"])
    for b in range(1, big_b + 1):
        cand = pd.read_parquet(out / f"level{b}" / "candidates.parquet")
        trained = pd.read_parquet(out / f"level{b}" / "trained.parquet")
        expected = (2 * n_ops) * (2 * n_ops + 1) // 2 if b == 1 else k
        assert len(cand) == expected == len(trained)
        assert set(cand["cell"]) == set(trained["cell"])
        assert (cand["num_blocks"] == b).all()
        ok = trained[trained["status"] == "ok"]
        assert len(ok) == len(trained)
        assert ((ok["val_acc"] > 0) & (ok["val_acc"] <= 1)).all()
        if b > 1:
            parents = set(pd.read_parquet(out / f"level{b - 1}" / "candidates.parquet")["cell"])
            assert set(cand["parent"]) <= parents
            assert (out / f"level{b}" / "scored.parquet").exists()
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(pd.read_csv(out / "summary.csv")) == len(summary)
    assert len(summary) == (2 * n_ops) * (2 * n_ops + 1) // 2 + k * (big_b - 1)
    assert summary["pred_mean"].notna().sum() == k * (big_b - 1)
    best = parse((out / "best_cell.txt").read_text().splitlines()[0])
    assert best.text == summary.loc[summary["val_acc"].idxmax(), "cell"]
    for stem in (
        "search_efficiency",
        "predicted_vs_true",
        "accuracy_by_size",
        "accuracy_vs_size",
        "best_cell",
    ):
        for ext in ("png", "pdf", "csv"):
            assert (out / "figures" / f"{stem}.{ext}").stat().st_size > 0
    metrics = json.loads((out / "final" / "metrics.json").read_text())
    assert 0 < metrics["test_acc"] <= 1
    assert (out / "final" / "cell.txt").read_text().strip() == best.text
    assert (out / "final" / "model.torchscript.pt").stat().st_size > 0


def test_results_load_in_one_call(finished: Path, tmp_path: Path) -> None:
    out = finished / "results" / "tiny"
    res = load_results(out)
    summary = pd.read_parquet(out / "summary.parquet")
    assert len(res.summary) == len(summary) and res.summary["models_trained"].tolist() == list(
        range(1, len(summary) + 1)
    )
    assert res.best_cell == (out / "best_cell.txt").read_text().splitlines()[0] == res.best["cell"]
    assert res.best["val_acc"] == summary["val_acc"].max()
    assert res.final is not None
    assert res.final == json.loads((out / "final" / "metrics.json").read_text())
    random = res.baselines["random_search"]
    assert len(random) == len(pd.read_parquet(out / "random" / "trained.parquet")) == 8
    assert f"best cell {res.best_cell}" in res.describe() and "random_search: 8 models" in res.describe()
    copy = tmp_path / "tiny"  # without the replicates (tests/test_replicates.py may have run them here)
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("cache", "logs", "report*", "replicates"))
    assert load_results(copy).replicates is None  # a run without the replicates target
    (copy / "best_cell.txt").unlink()
    with pytest.raises(
        PnasError, match=rf"^best-cell file {re.escape(str(copy / 'best_cell.txt'))} does not exist"
    ):
        load_results(copy)
    (copy / "summary.parquet").unlink()
    with pytest.raises(PnasError, match=r"lacks summary\.parquet"):
        load_results(copy)
    with pytest.raises(PnasError, match="does not exist"):
        load_results(tmp_path / "nowhere")


def report_data(html: str) -> dict[str, object]:
    """The JSON the report's page scripts hold (``var results = {...};`` etc.): what its menu shows."""
    data = {}
    for name in ("results", "categories", "workflow_desc"):
        match = re.search(rf'<script id="[\w-]+">\s*var {name} = (.*?);\s*</script>', html, re.S)
        assert match, name
        data[name] = json.loads(match[1])
    return data


def test_report_menu_reaches_every_figure_and_opens_on_the_run(finished: Path) -> None:
    report = finished / "results" / "tiny" / "report.html"
    snakemake(finished, "--report", str(report.relative_to(finished)))
    data = report_data(report.read_text())
    results, categories = data["results"], data["categories"]
    in_menu = [path for subcats in categories.values() for paths in subcats.values() for path in paths]
    figures = sorted(str(p.relative_to(finished)) for p in (finished / "results/tiny/figures").glob("*.png"))
    assert len(figures) == 6 and set(figures) <= set(in_menu)
    assert "results/tiny/final/curve.png" in in_menu and "results/tiny/summary.html" in in_menu
    for subcats in categories.values():
        for paths in subcats.values():
            # The menu tells the entries of a subcategory apart by their labels (else the file name):
            # entries sharing them are unreachable but for one.
            keys = [tuple((results[p]["labels"] or {}).values()) or results[p]["filename"] for p in paths]
            assert len(set(keys)) == len(keys), keys
    for path in in_menu:
        assert len(results[path]["caption"]) > 200, path  # every entry with its own caption
    landing = html_lib.unescape(re.sub(r"<[^>]+>", "", data["workflow_desc"]))  # the page's text
    metrics = json.loads((finished / "results/tiny/final/metrics.json").read_text())
    best = (finished / "results/tiny/best_cell.txt").read_text().splitlines()[0]
    assert "pnas run tiny" in landing and best in landing
    assert f"test accuracy {100 * metrics['test_acc']:.2f}%" in landing.split("The search")[0]
    assert "PNAS against random search: after 8 models each" in landing
    assert "beam_size: 3" in landing  # the config it ran with


def test_finished_run_is_a_no_op(finished: Path) -> None:
    assert planned_jobs(finished) == {}


def test_figures_rebuild_without_training(finished: Path) -> None:
    figures = finished / "results" / "tiny" / "figures"
    before = {p.name: p.read_bytes() for p in figures.iterdir()}
    shutil.rmtree(figures)
    jobs = planned_jobs(finished, "figures")
    assert jobs and all(rule.startswith("figure") for rule in jobs), jobs
    snakemake(finished, "figures")
    after = {p.name: p.read_bytes() for p in figures.iterdir()}
    assert after.keys() == before.keys()
    for name in after:  # byte-stable figures: PNG, PDF and CSV alike
        assert after[name] == before[name], name


def test_deleted_shard_rebuilds_only_its_dependents(finished: Path) -> None:
    out = finished / "results" / "tiny"
    shard = out / "level2" / "train" / "shard1.parquet"
    before = shard.read_bytes()
    shard.unlink()
    # Snakemake keeps up-to-date results whose intermediate input is gone: nothing is planned ...
    assert planned_jobs(finished) == {}
    # ... until the shard is asked for: then only that shard is rebuilt, from the cache,
    assert planned_jobs(finished, str(shard.relative_to(finished))) == {"train_shard": 1}
    snakemake(finished, str(shard.relative_to(finished)))
    log = (out / "logs" / "level2" / "train_shard1.log").read_text()
    assert "] cached " in log and "] trained " not in log  # served by the cache, not retrained
    # byte for byte the file it replaces, so Snakemake (which checksums small inputs) sees nothing
    # downstream to redo.
    assert shard.read_bytes() == before
    assert planned_jobs(finished) == {}


def params_changed(root: Path, package: Path) -> set[str]:
    """Rules with an output whose params (code hashes) changed, by ``snakemake --summary``, with
    ``package``'s pnas_core first on the path."""
    env = {**os.environ, "PYTHONPATH": str(package)}
    rows = [line.split("\t") for line in snakemake(root, "--summary", env=env).stdout.splitlines()]
    header = rows[0]
    rule, status = header.index("rule"), header.index("status")
    return {r[rule] for r in rows[1:] if len(r) == len(header) and r[status] == "params changed"}


def test_code_edit_reruns_the_rules_that_run_it(finished: Path) -> None:
    package = finished / "pkg"
    shutil.copytree(REPO / "pnas_core", package / "pnas_core", ignore=shutil.ignore_patterns("__pycache__"))
    assert params_changed(finished, package) == set()  # the same code, elsewhere: nothing reruns
    with open(package / "pnas_core" / "training" / "complexity.py", "a") as fh:
        fh.write("\n# an edit\n")  # writes mult_adds into every record; the old hand-written lists missed it
    # ... and the exact cost of every scored child (expand-score, pnas_core.training.cost)
    assert params_changed(finished, package) == {"train_shard", "final_train", "expand_score"}
    with open(package / "pnas_core" / "figures" / "style.py", "a") as fh:
        fh.write("\n# an edit\n")
    figures = {f"figure_{stem}" for stem in ("quality", "search_efficiency", "predicted_vs_true")}
    figures |= {"figure_accuracy_by_size", "figure_accuracy_vs_size", "figure_best_cell"}
    assert params_changed(finished, package) == {"train_shard", "final_train", "expand_score", *figures}


def changed_config(root: Path, section: str, **values: object) -> tuple[str, str]:
    """Config files: tiny.yaml with ``values`` changed in ``section`` (a second file overrides)."""
    cfg = yaml.safe_load(TINY.read_text())
    (root / "changed.yaml").write_text(yaml.safe_dump({section: {**cfg[section], **values}}))
    return ("tiny.yaml", "changed.yaml")


def test_changed_setting_reruns_only_what_it_affects(finished: Path) -> None:
    shards = yaml.safe_load(TINY.read_text())["search"]["train_shards"]
    jobs = planned_jobs(finished, configs=changed_config(finished, "surrogate", epochs=6))
    # The predictors change: refit, rescore, reselect, and train level 2 again (from the cache where
    # the same cells come back), but level 1 training, the samples and the baselines' training stay.
    assert jobs["surrogate_settings"] == 1 and jobs["fit_surrogate"] == 1 and jobs["select_top_k"] == 1
    assert jobs["train_shard"] == shards  # level 2's shards only
    assert not {"train_settings", "enumerate_level1", "sample_random", "sample_quality"} & set(jobs)
    jobs = planned_jobs(finished, configs=changed_config(finished, "quality", train_size=5))
    assert set(jobs) == {"eval_quality", "figure_quality", "all"}, jobs
    jobs = planned_jobs(finished, configs=changed_config(finished, "final", epochs=3))
    # ... and the report's landing page, which states the final test accuracy
    assert set(jobs) == {"final_settings", "final_train", "final_export", "report_page", "all"}, jobs


README_RUN = ["snakemake", "--cores", "2", "--configfile", "tiny.yaml"]
"""The README's command (`snakemake --cores 2`) on the tiny config."""


def run_literally(root: Path, argv: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    """Run a README command as a user types it (``snakemake`` is Snakemake's own entry point)."""
    cmd = [sys.executable, "-m", "snakemake", *argv[1:]]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)


def kill_9_when(root: Path, reached: Callable[[], bool], what: str) -> None:
    """Start the README's command in ``root`` and kill -9 its whole job tree once ``reached()``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *README_RUN[1:]],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None and not reached():
            time.sleep(0.1)
        assert proc.poll() is None, f"the workflow ended before {what}"
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the whole job tree
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def unlock_and_rerun(root: Path, until: Callable[[], bool] | None = None, what: str = "") -> None:
    """The README's recipe after a kill, literally: unlock, then the same command (no extra flag),
    to its end (or kill -9 it again once ``until()``)."""
    unlock = run_literally(root, ["snakemake", "--unlock"])
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    if until is not None:
        kill_9_when(root, until, what)
        return
    again = run_literally(root, README_RUN)
    assert again.returncode == 0, again.stderr[-3000:]


def test_kill_9_then_the_readme_commands_resume(tmp_path: Path) -> None:
    """One run killed twice, in level 1 training and then (resumed) in final training: each time the
    README's commands resume it, without training again what was done before the kill."""
    root = make_project(tmp_path / "kill")
    cache = root / "results" / "cache"
    final_log = root / "results" / "tiny" / "logs" / "final_train.log"

    def entries() -> dict[Path, int]:
        return {p: p.stat().st_mtime_ns for p in cache.rglob("*.json")}

    kill_9_when(root, lambda: len(list(cache.rglob("*.json"))) >= 4, "level 1 training")
    done_in_level1 = entries()
    assert len(done_in_level1) >= 4
    # The search resumes and ends; its final training is killed too.
    unlock_and_rerun(
        root, lambda: final_log.exists() and "training images" in final_log.read_text(), "final training"
    )
    done_in_final = entries()
    shard_logs = {p: p.stat().st_mtime_ns for p in root.rglob("train_shard*.log")}
    unlock_and_rerun(root)
    done = entries()
    assert done.items() >= done_in_final.items() >= done_in_level1.items()  # cache entries untouched
    trained, cached = train_log_counts(root)
    assert cached >= len(done_in_level1)
    # Nothing finished before the first kill was trained again.
    assert trained <= len(done) - len(done_in_level1)
    # The search had finished at the second kill: no training job ran again (its logs are the resumed run's).
    assert {p: p.stat().st_mtime_ns for p in shard_logs} == shard_logs
    assert json.loads((root / "results/tiny/final/metrics.json").read_text())["test_acc"] > 0
    assert planned_jobs(root) == {}


@pytest.mark.parametrize(
    ("edit", "message"),
    [  # through Snakemake itself; every key's messages are checked in-process in test_config_check
        ({"typo_key": 1}, "typo_key"),
        ({"dataset": "cifar10", "data_root": "/nonexistent/cifar"}, "/nonexistent/cifar"),
        ({"search": {"predictors": ["rnn", "mlp"], "select_by": "xgb"}}, "search.select_by: 'xgb'"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path: Path, edit: dict, message: str) -> None:
    root = make_project(tmp_path)
    cfg = yaml.safe_load(TINY.read_text())
    for key, value in edit.items():
        if isinstance(value, dict):
            cfg[key].update(value)
        else:
            cfg[key] = value
    (root / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(root, check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (root / "results").exists()  # nothing ran, nothing was written


def test_empty_class_folder_fails_the_dry_run(tmp_path: Path) -> None:
    import importlib.util

    from pnas_core.training.imagefolder import IMAGE_SUFFIXES

    root = make_project(tmp_path / "project")
    data = tmp_path / "data"
    for cls in ("cat", "dog"):
        (data / "train" / cls).mkdir(parents=True)
        (data / "train" / cls / "0.png").write_bytes(b"not decoded at parse time")
    (data / "train" / "eel").mkdir()
    (data / "val" / "dog").mkdir(parents=True)
    (data / "val" / "dog" / "notes.txt").write_text("no image")
    cfg = yaml.safe_load(TINY.read_text()) | {"dataset": "imagefolder", "data_root": str(data)}
    (root / "tiny.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(root, "-n", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert f"{data / 'train' / 'eel'}, {data / 'val' / 'dog'}" in text, text[-2000:]
    assert not (root / "results").exists()
    spec = importlib.util.spec_from_file_location("check", REPO / "workflow/scripts/image_folder_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    assert check.IMAGE_SUFFIXES == IMAGE_SUFFIXES  # the one list, spelt twice (no pnas_core at parse time)


def test_typo_never_deletes_a_finished_output(finished: Path) -> None:
    final = finished / "results" / "tiny" / "final"
    before = {p.name: p.stat().st_mtime_ns for p in final.iterdir()}
    cfg = yaml.safe_load(TINY.read_text())
    (finished / "typo.yaml").write_text(yaml.safe_dump({"final": {**cfg["final"], "epoch": 3}}))
    for args in (("-n",), ()):
        proc = snakemake(finished, *args, check=False, configs=("tiny.yaml", "typo.yaml"))
        assert proc.returncode != 0 and "final.epoch: unknown key" in proc.stdout + proc.stderr
    assert {p.name: p.stat().st_mtime_ns for p in final.iterdir()} == before
    assert {"model.pt", "metrics.json", "model.torchscript.pt"} <= set(before)


def settings_written(root: Path, name: str, *argv: str) -> dict[str, dict]:
    """The train and surrogate settings files the workflow writes for the config of ``argv``."""
    targets = [f"results/{name}/settings/{s}.json" for s in ("train", "surrogate")]
    proc = run_literally(root, ["snakemake", "--cores", "1", *targets, *argv])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {
        s: json.loads((root / t).read_text()) for s, t in zip(("train", "surrogate"), targets, strict=True)
    }


def test_keys_left_out_take_the_documented_defaults(tmp_path: Path) -> None:
    from pnas_core.training.train import TrainSettings

    root = make_project(tmp_path)
    batches = root / "cifar" / "cifar-10-batches-py"  # the parse-time check wants the files there
    batches.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (batches / name).write_bytes(b"")
    (root / "user.yaml").write_text("train:\n  epochs: 7\n")
    written = settings_written(root, "pnas", "--configfile", "user.yaml", "--config", "data_root=cifar")
    train = TrainSettings.from_dict(written["train"])
    # The paper's network and data (not the quick preset's F=8 on 8x8 digits), the user's epochs.
    assert (train.filters, train.cells_per_stack, train.epochs, train.image_size) == (24, 2, 7, None)
    assert (train.dataset, train.batch_size, train.val_fraction) == ("cifar10", 32, 0.1)
    assert written["surrogate"]["max_blocks"] == 5
    proc = run_literally(
        root, ["snakemake", "-n", "--cores", "1", "--configfile", "user.yaml", "--config", "data_root=cifar"]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"^fit_surrogate\s+4\s*$", proc.stdout, re.M)  # B = 5: levels 1..4 fit predictors
    # No --configfile: the quick preset.
    quick = settings_written(root, "digits-quick")
    assert (quick["train"]["filters"], quick["train"]["image_size"]) == (8, 8)


def test_early_stopping_trains_rungs_and_resumes(tmp_path: Path) -> None:
    """Levels in rungs (epoch 1, then the best half to epoch 2): a level's records hold every
    candidate's last rung, full-budget records are the cache's ordinary entries, checkpoints are
    gone once the level is done, and a deleted rung reruns from the cache without training."""
    from pnas_core.io.records import RECORD_KEY, read_records
    from pnas_core.search.early_stop import promoted_count
    from pnas_core.training.cache import ResultCache

    root = make_project(tmp_path)
    cfg = yaml.safe_load(TINY.read_text())
    cfg["search"]["early_stop"] = {"rungs": [1], "keep": 0.5}
    cfg["train"]["epochs"] = 2
    (root / "es.yaml").write_text(yaml.safe_dump(cfg))
    plan = planned_jobs(root, "results/tiny/level2/trained.parquet", configs=("es.yaml",))
    assert plan["promote"] == plan["finish_level"] == 2 and plan["train_shard"] == 2 * 2 * 2
    target = "results/tiny/level1/trained.parquet"
    snakemake(root, target, configs=("es.yaml",))
    level = root / "results" / "tiny" / "level1"
    n = len(pd.read_parquet(level / "candidates.parquet"))
    records = read_records(level / "trained.parquet")
    assert len(records) == n and records["status"].value_counts().to_dict() == {
        "stopped": n - promoted_count(n, 0.5),
        "ok": promoted_count(n, 0.5),
    }
    assert set(records.loc[records["status"] == "stopped", "epochs"]) == {1}
    cache = ResultCache(root / "results" / "cache")
    for row in records[records["status"] == "ok"].to_dict("records"):
        entry = cache.get(*(row[k] for k in RECORD_KEY))  # the entry full training uses
        assert entry["val_curve"] == list(row["val_curve"]) and entry["epochs"] == row["epochs"] == 2
    assert not list((root / "results" / "cache").rglob("*.pt"))  # checkpoints removed
    for path in (level / "rung2").rglob("*.parquet"):
        path.unlink()
    snakemake(root, "results/tiny/level1/rung2/trained.parquet", configs=("es.yaml",))
    logs = [
        p.read_text()
        for p in (root / "results" / "tiny" / "logs" / "level1" / "rung2").glob("train_shard*.log")
    ]
    assert all("] cached " in log and "] trained " not in log for log in logs)  # read back, not retrained
