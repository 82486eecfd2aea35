"""End to end through Snakemake (not by calling functions): the tiny config's whole DAG, reruns,
a deleted shard, kill -9 and resume, bad configs."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pnas_core.space import parse

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
pytestmark = pytest.mark.slow


def make_project(root: Path) -> Path:
    """A copy of the workflow and configs in ``root`` (results and cache stay inside it)."""
    root.mkdir(parents=True, exist_ok=True)
    for sub in ("workflow", "config"):
        shutil.copytree(REPO / sub, root / sub, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(TINY, root / "tiny.yaml")
    return root


def snakemake(
    root: Path,
    *args: str,
    check: bool = True,
    timeout: int = 900,
    configs: tuple[str, ...] = ("tiny.yaml",),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    # Targets and flags first: --configfile takes several values and would swallow a target after it.
    cmd = [sys.executable, "-m", "snakemake", *args, "--cores", "2", "--configfile", *configs]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def planned_jobs(root: Path, *targets: str, configs: tuple[str, ...] = ("tiny.yaml",)) -> dict[str, int]:
    """Job counts by rule of a dry run (empty when nothing is to be done)."""
    proc = snakemake(root, "-n", *targets, configs=configs)
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    stats = text.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)}


def train_log_counts(root: Path) -> tuple[int, int]:
    """(trained, cached) candidate lines over every training log of the tiny run."""
    trained = cached = 0
    for log in (root / "results" / "tiny" / "logs").rglob("train_shard*.log"):
        text = log.read_text()
        trained += len(re.findall(r"\] trained ", text))
        cached += len(re.findall(r"\] cached ", text))
    return trained, cached


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("wf"))
    snakemake(root)
    return root


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


def test_report_has_every_figure_and_caption(finished: Path) -> None:
    report = finished / "results" / "tiny" / "report.html"
    snakemake(finished, "--report", str(report.relative_to(finished)))
    html = report.read_text()
    for stem in ("search_efficiency", "predictor_quality", "predicted_vs_true", "best_cell", "summary"):
        assert stem in html, stem
    assert "Search efficiency" in html and "Every cell the search trained" in html


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
    with open(package / "pnas_core" / "complexity.py", "a") as fh:
        fh.write("\n# an edit\n")  # writes mult_adds into every record; the old hand-written lists missed it
    assert params_changed(finished, package) == {"train_shard", "final_train"}
    with open(package / "pnas_core" / "figures" / "style.py", "a") as fh:
        fh.write("\n# an edit\n")
    figures = {f"figure_{stem}" for stem in ("quality", "search_efficiency", "predicted_vs_true")}
    figures |= {"figure_accuracy_by_size", "figure_accuracy_vs_size", "figure_best_cell"}
    assert params_changed(finished, package) == {"train_shard", "final_train", *figures}


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
    assert set(jobs) == {"final_settings", "final_train", "final_export", "all"}, jobs


def test_kill_and_resume_retrains_nothing_finished(tmp_path: Path) -> None:
    root = make_project(tmp_path / "kill")
    cache = root / "results" / "cache"
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--configfile", "tiny.yaml"]
    proc = subprocess.Popen(
        cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(list(cache.rglob("*.json"))) < 4:
            time.sleep(0.2)
        assert proc.poll() is None, "the workflow finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the whole job tree in the middle of level 1
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    done_before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.json")}
    assert len(done_before) >= 4
    assert not (root / "results" / "tiny" / "level1" / "trained.parquet").exists()
    # kill -9 leaves Snakemake's directory lock behind; Snakemake names the fix, --unlock.
    snakemake(root, "--unlock")
    snakemake(root, "--rerun-incomplete")
    assert all(p.stat().st_mtime_ns == m for p, m in done_before.items())  # cache entries untouched
    trained, cached = train_log_counts(root)
    total = len(pd.read_parquet(root / "results" / "tiny" / "summary.parquet"))
    assert cached >= len(done_before)
    # Nothing finished before the kill was trained again (random and quality cells may share cells
    # with the search, which the cache also serves).
    assert trained <= len(list(cache.rglob("*.json"))) - len(done_before)
    assert total > 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"search": {"ops": ["sep3x3", "conv9x9"]}}, "conv9x9"),
        ({"search": {"beam_size": 0}}, "beam_size"),
        ({"search": {"max_blocks": 6}}, "max_blocks"),
        ({"search": {"train_shards": "two"}}, "train_shards"),
        ({"seed": 1.5}, "seed"),
        ({"typo_key": 1}, "typo_key"),
        ({"dataset": "cifar10", "data_root": "/nonexistent/cifar"}, "/nonexistent/cifar"),
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
