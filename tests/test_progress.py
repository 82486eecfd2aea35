"""What a user watching a run sees: the plan printed first, one line per stage in the terminal under
Snakemake, ``pnas status`` on a finished and an interrupted run, and ``pnas init`` for an image folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from workflow_project import REPO, make_project, snakemake

from pnas_core.io.records import read_records
from pnas_core.search.plan import Plan, measured_timing, plan_from_config, read_plan
from pnas_core.search.starter import QUICK
from pnas_core.space.cells import parse
from pnas_core.training.cache import ResultCache, cache_key
from pnas_core.training.train import load_settings


def pnas(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pnas_core", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def status_rows(text: str) -> dict[str, str]:
    """``stage -> trained/planned`` of a ``pnas status`` table."""
    return {m[1]: m[2] for m in re.finditer(r"^(level \d+|random|quality b\d+)\s+(\d+/\S+)", text, re.M)}


@pytest.mark.slow
def test_plan_first_then_a_line_per_level_in_the_terminal(finished: Path) -> None:
    out, err = (finished / "terminal.out").read_text(), (finished / "terminal.err").read_text()
    assert out.startswith("pnas plan: tiny: dataset digits, B = 2 levels, K = 3"), out[:300]
    assert "estimated cost: unknown on this device (cpu" in out  # a fresh cache: nothing measured yet
    # the plan's counts are what the run trained
    plan = read_plan(finished / "results" / "tiny")
    assert plan is not None
    for stage, n in plan.stages.items():
        trained = read_records(finished / "results" / "tiny" / stage / "trained.parquet")
        assert len(trained) == n, stage
    # each level's line reaches the terminal (Snakemake's stderr) while the details go to the logs
    for stage, n in plan.stages.items():
        label = stage.replace("level", "level ").replace("/", " ")
        assert re.search(
            rf"^pnas: {label}: {n}/{n} trained, best 0\.\d{{4}}, elapsed \S+, done$", err, re.M
        ), (
            stage,
            err[-2000:],
        )
    assert "] trained " not in err  # per-candidate lines stay in the logs
    for log in (finished / "results" / "tiny" / "logs").rglob("*.log"):
        assert "\r" not in log.read_text(), log
    # a second run's estimate: the median training time of the run's full-budget records on this device
    settings = load_settings(finished / "results" / "tiny" / "settings" / "train.json")
    cache = finished / "results" / "cache"
    timing = measured_timing(cache, settings.settings_hash(), "cpu")
    seconds = [
        r["train_seconds"]
        for r in ResultCache(cache).full_records()
        if r["status"] == "ok" and r["settings_hash"] == settings.settings_hash()
    ]
    assert timing is not None and timing.seconds == np.median(seconds) and len(seconds) >= plan.models // 2
    assert measured_timing(cache, settings.settings_hash(), "cuda") is None


@pytest.mark.slow
def test_status_of_a_finished_run(finished: Path) -> None:
    proc = pnas("status", "results/tiny", cwd=finished)
    assert proc.returncode == 0, proc.stderr
    rows = status_rows(proc.stdout)
    assert rows == {
        "level 1": "21/21",
        "level 2": "3/3",
        "random": "8/8",
        "quality b1": "8/8",
        "quality b2": "8/8",
    }
    assert f"{_best(finished):.4f}" in proc.stdout
    assert "total: 48/48 models trained" in proc.stdout
    assert re.search(r"^final network: test accuracy 0\.\d{4}", proc.stdout, re.M)


def _best(root: Path) -> float:
    summary = pd.read_parquet(root / "results" / "tiny" / "summary.parquet")
    return float(summary["val_acc"].max())


@pytest.mark.slow
def test_status_of_an_interrupted_run(finished: Path, tmp_path: Path) -> None:
    """A run stopped in the middle of level 2 (one of its three candidates not trained; the level not
    merged; nothing after it): the files such a run leaves, made from the finished one's."""
    root = tmp_path / "run"
    shutil.copytree(finished / "results", root / "results")
    out = root / "results" / "tiny"
    for gone in ("level2/trained.parquet", "level2/train", "summary.parquet", "final", "figures"):
        path = out / gone
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    cells = pd.read_parquet(out / "level2" / "candidates.parquet")["cell"].tolist()
    records = read_records(finished / "results" / "tiny" / "level2" / "trained.parquet")
    missing = records.set_index("cell").loc[cells[0]]
    cache = ResultCache(root / "results" / "cache")
    run = (parse(cells[0]).id, missing["settings_hash"], missing["dataset"], int(missing["seed"]))
    assert cache.get(*run) is not None
    cache.path(cache_key(*run)).unlink()
    proc = pnas("status", "results/tiny", cwd=root)
    assert proc.returncode == 0, proc.stderr
    rows = status_rows(proc.stdout)
    assert rows["level 1"] == "21/21" and rows["level 2"] == "2/3" and rows["random"] == "8/8"
    assert "total: 47/48 models trained; 1 left:" in proc.stdout
    assert "final network: not trained yet" in proc.stdout
    # a run from before plans were kept: the stages found on disk
    (out / "plan.json").unlink()
    proc = pnas("status", "results/tiny", "--cache-dir", "results/cache", cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert status_rows(proc.stdout)["level 2"] == "2/3"


def test_status_of_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    proc = pnas("status", str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"pnas: error: results folder {tmp_path / 'nowhere'} does not exist (a run writes results/<name>/)"
    ]


def test_plan_counts_follow_the_space() -> None:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    plan = plan_from_config(config)
    assert plan.stages == {
        "level1": 36,
        "level2": 32,
        "level3": 32,
        "random": 100,
        "quality/b1": 36,  # 40 asked, 36 distinct 1-block cells exist
        "quality/b2": 40,
        "quality/b3": 40,
    }
    assert plan.search_models == 100 and Plan.from_dict(plan.to_dict()) == plan


def test_quick_scale_is_the_quick_preset() -> None:
    preset = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for section, values in QUICK.items():
        for key, value in values.items():
            assert preset[section][key] == value, f"{section}.{key}"


def image_folder(
    root: Path, classes: tuple[str, ...] = ("cat", "dog"), size: tuple[int, int] = (10, 12)
) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
                    folder / f"{i}.png"
                )
    return root


@pytest.mark.slow
def test_init_writes_a_config_whose_dry_run_succeeds(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "my photos")
    project = make_project(tmp_path / "project")
    proc = pnas("init", "--data", str(data), cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "2 classes, 12 train, 4 test images of 10x12" in proc.stdout
    config_file = project / "config" / "my-photos.yaml"
    config = yaml.safe_load(config_file.read_text())
    assert config["dataset"] == "imagefolder" and config["data_root"] == str(data.resolve())
    assert config["train"]["image_size"] == 12 and config["search"]["beam_size"] == 32
    dry = snakemake(project, "-n", configs=("config/my-photos.yaml",))
    assert "results/my-photos/level3/candidates.parquet" in dry.stdout
    # never over an existing file
    again = pnas("init", "--data", str(data), cwd=project)
    assert again.returncode == 2 and "exists" in again.stderr
    paper = pnas("init", "--data", str(data), "--scale", "paper", "--out", "paper.yaml", cwd=project)
    assert paper.returncode == 0, paper.stderr
    assert yaml.safe_load((project / "paper.yaml").read_text())["train"] == {"image_size": 12}


def test_init_refuses_a_bad_layout_in_one_line(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "one", classes=("only",))
    proc = pnas("init", "--data", str(data), "--out", str(tmp_path / "c.yaml"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "at least two class folders" in proc.stderr
    assert not (tmp_path / "c.yaml").exists()


def test_run_search_reports_each_model_and_finds_the_same_cells() -> None:
    from pnas_core.search.benchmark import load_table
    from pnas_core.search.progressive import TableEvaluator, run_search

    table = load_table("digits_b2")
    calls: list[tuple[int, int, str]] = []
    reported = run_search(table.space, TableEvaluator(table, seed=3), 16, progress=lambda *c: calls.append(c))
    quiet = run_search(table.space, TableEvaluator(table, seed=3), 16, progress=False)
    pd.testing.assert_frame_equal(reported.summary, quiet.summary)
    assert [done for done, _, _ in calls] == list(range(1, len(quiet.summary) + 1))  # one call per model
    assert {total for _, total, _ in calls} == {36 + 16}
    best = quiet.summary["val_acc"].max()
    assert calls[-1][2] == f"level 2, best {best:.4f}"


def test_simulate_prints_its_plan_and_no_carriage_return_off_a_terminal(tmp_path: Path) -> None:
    proc = pnas("simulate", "--seeds", "2", "--out-dir", str(tmp_path), "--strategies", "pnas:mean", "random")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(
        "pnas simulate: table digits_b2 (2214 cells), K = 16, 2 strategies x 2 seeds"
    )
    assert "\r" not in proc.stderr + proc.stdout
