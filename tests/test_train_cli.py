"""``pnas train`` and ``pnas merge-records``: shards, the cache, kill-and-resume, merging, errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from pnas_core.cli import main
from pnas_core.io.records import read_metadata, read_records, write_records

# tiny settings: a candidate trains in well under a second on one core
TINY = {
    "dataset": "digits",
    "val_fraction": 0.2,
    "cells_per_stack": 1,
    "filters": 4,
    "epochs": 1,
    "batch_size": 64,
    "lr": 0.05,
    "device": "cpu",
}
CELLS = ["1:avg3x3,0:identity", "0:max3x3,1:identity", "0:avg3x3,0:max3x3", "1:identity,1:max3x3"]


@pytest.fixture
def job(tmp_path: Path) -> dict[str, Path]:
    torch.set_num_threads(1)
    pd.DataFrame({"cell": CELLS, "rank": range(len(CELLS))}).to_parquet(tmp_path / "cands.parquet")
    (tmp_path / "settings.json").write_text(json.dumps(TINY))
    return {
        "candidates": tmp_path / "cands.parquet",
        "settings": tmp_path / "settings.json",
        "cache": tmp_path / "cache",
        "dir": tmp_path,
    }


def _train_args(job: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--candidates",
        str(job["candidates"]),
        "--settings",
        str(job["settings"]),
        "--out",
        str(out),
        "--cache-dir",
        str(job["cache"]),
        "--threads",
        "1",
        "--no-progress",
        *extra,
    ]


def _counts(stderr: str) -> tuple[int, int]:
    """(trained, cached) log lines."""
    return len(re.findall(r"\] trained ", stderr)), len(re.findall(r"\] cached ", stderr))


def _cache_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("*/*.json")) if cache.exists() else []


def test_shards_merge_and_cache(job: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    outs = [job["dir"] / f"shard{i}.parquet" for i in range(2)]
    for i, out in enumerate(outs):
        assert main(_train_args(job, out, "--shard", str(i), "--num-shards", "2")) == 0
    assert _counts(capsys.readouterr().err) == (4, 0)
    shard0 = read_records(outs[0])
    # rows i, i+S, ...; cells canonicalised
    assert shard0["cell"].tolist() == ["0:identity,1:avg3x3", "0:avg3x3,0:max3x3"]
    meta = read_metadata(outs[0])
    assert json.loads(meta["settings"])["filters"] == 4 and meta["shard"] == "0" and meta["version"]
    assert len(_cache_files(job["cache"])) == 4

    merged = job["dir"] / "merged.parquet"
    assert main(["merge-records", "--out", str(merged), *map(str, reversed(outs))]) == 0
    df = read_records(merged)
    assert df["cell"].tolist() == sorted(df["cell"])
    assert len(df) == 4 and set(df["status"]) == {"ok"}
    assert "shard" not in read_metadata(merged) and "settings" in read_metadata(merged)

    # a rerun of the whole table trains nothing and reproduces the same records
    again = job["dir"] / "all.parquet"
    assert main(_train_args(job, again)) == 0
    assert _counts(capsys.readouterr().err) == (0, 4)
    pd.testing.assert_frame_equal(
        read_records(again).sort_values("cell", ignore_index=True), df, check_like=False
    )


def test_corrupt_cache_entry_is_retrained_with_warning(
    job: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = job["dir"] / "out.parquet"
    assert main(_train_args(job, out)) == 0
    first = read_records(out)
    capsys.readouterr()
    victim = _cache_files(job["cache"])[0]
    victim.write_text('{"key": "cut off')
    assert main(_train_args(job, out)) == 0
    err = capsys.readouterr().err
    assert f"warning: ignoring corrupt cache entry {victim}" in err
    assert _counts(err) == (1, 3)
    assert json.loads(victim.read_text())["record"]["status"] == "ok"  # rewritten
    # deterministic: the retrained candidate has the same accuracy as before
    pd.testing.assert_series_equal(read_records(out)["val_acc"], first["val_acc"])


def _kill_after_first_entry(cmd: list[str], env: dict[str, str], cache: Path) -> None:
    """Run ``cmd`` and SIGKILL it as soon as it has written its first cache entry."""
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not _cache_files(cache) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_kill_and_resume_retrains_only_unfinished(job: dict[str, Path]) -> None:
    out = job["dir"] / "out.parquet"
    cmd = [sys.executable, "-m", "pnas_core", *_train_args(job, out)]
    env = {**os.environ, "PNAS_THREADS": "1"}
    _kill_after_first_entry(cmd, env, job["cache"])
    done = len(_cache_files(job["cache"]))
    assert 1 <= done < len(CELLS), "kill the job after its first candidate, before the last"
    assert not out.exists()
    assert not list(job["cache"].glob("*/.*.tmp"))  # no half-written entries left behind

    rerun = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, env=env, check=True)
    assert _counts(rerun.stderr) == (len(CELLS) - done, done)
    assert len(read_records(out)) == len(CELLS)


def test_user_errors_exit_2_with_one_line(job: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = job["dir"] / "out.parquet"
    (job["dir"] / "bad.json").write_text(json.dumps({**TINY, "epochz": 1}))
    assert main([*_train_args(job, out)[:4], str(job["dir"] / "bad.json"), *_train_args(job, out)[5:]]) == 2
    assert "'epochz'" in capsys.readouterr().err
    pd.DataFrame({"cells": CELLS}).to_parquet(job["dir"] / "nocell.parquet")
    args = _train_args(job, out)
    args[2] = str(job["dir"] / "nocell.parquet")
    assert main(args) == 2
    assert "nocell.parquet lacks column(s) cell" in capsys.readouterr().err
    pd.DataFrame({"cell": ["0:sep3x3,0:bogus"]}).to_parquet(job["dir"] / "badcell.parquet")
    args[2] = str(job["dir"] / "badcell.parquet")
    assert main(args) == 2
    assert re.search(r"badcell.parquet, row 0: block 1 .*unknown op 'bogus'", capsys.readouterr().err)
    assert main([*_train_args(job, out), "--shard", "2", "--num-shards", "2"]) == 2
    assert "--shard must be in 0..1" in capsys.readouterr().err
    pd.DataFrame({"cell": ["x"]}).to_parquet(job["dir"] / "notrecords.parquet")
    assert main(["merge-records", "--out", str(out), str(job["dir"] / "notrecords.parquet")]) == 2
    assert "notrecords.parquet does not have the training-record schema" in capsys.readouterr().err
    assert not out.exists()


def test_empty_shard_writes_an_empty_table(job: dict[str, Path]) -> None:
    out = job["dir"] / "empty.parquet"
    assert main([*_train_args(job, out), "--shard", "7", "--num-shards", "8"]) == 0
    assert len(read_records(out)) == 0
    write_records(job["dir"] / "copy.parquet", read_records(out))


def test_concurrent_jobs_train_each_candidate_once(job: dict[str, Path]) -> None:
    """Two jobs asking for the same candidates at once (a level and a baseline sharing cells)
    serialise on the cache's per-run lock: every candidate is trained exactly once."""
    cmd = [sys.executable, "-m", "pnas_core"]
    procs = [
        subprocess.Popen(
            [*cmd, *_train_args(job, job["dir"] / f"job{i}.parquet")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    logs = [p.communicate(timeout=300)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs
    counts = [_counts(log) for log in logs]
    assert sum(trained for trained, _ in counts) == len(CELLS), counts
    assert sum(cached for _, cached in counts) == len(CELLS), counts
    a, b = (read_records(job["dir"] / f"job{i}.parquet") for i in range(2))
    pd.testing.assert_frame_equal(a, b)


def test_workers_train_candidates_at_once_with_bitwise_equal_records(
    job: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = job["dir"] / "w1.parquet", job["dir"] / "w2.parquet"
    assert main(_train_args(job, one)) == 0
    # two worker processes, one torch thread each (--threads 2 split in two), their own cache
    args = _train_args(job, two, "--workers", "2", "--cache-dir", str(job["dir"] / "cache2"))
    args[args.index("--threads") + 1] = "2"
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "2 worker(s), 1 thread(s) each" in err and _counts(err) == (8, 0)
    a, b = read_records(one), read_records(two)
    assert a["cell"].tolist() == b["cell"].tolist()  # shard order, whatever finished first
    timing = ["train_seconds"]
    pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing), check_exact=True)
    assert len(_cache_files(job["dir"] / "cache2")) == 4
    # workers come from the settings too, and are not part of the settings hash
    (job["dir"] / "settings_w.json").write_text(json.dumps({**TINY, "workers": 3}))
    from pnas_core.training.train import TrainSettings, load_settings

    assert (
        load_settings(job["dir"] / "settings_w.json").settings_hash()
        == TrainSettings.from_dict(TINY).settings_hash()
    )
    for bad in ("x", "0", "1001"):
        with pytest.raises(SystemExit):
            main([*_train_args(job, two), "--workers", bad])
    assert "argument --workers: must be in 1..1,000, got 1001" in capsys.readouterr().err


def test_gpu_claims_follow_the_slot_and_skip_held_gpus(tmp_path: Path) -> None:
    from pnas_core import devices

    names = ["GPU-aaaa", "GPU-bbbb", "GPU-cccc"]
    held_before = len(devices._HELD)
    try:
        # jobs starting together with slots 0, 1 take GPUs 0, 1; slot 0 again finds GPU 0 held -> next free
        assert devices.claim_gpu(0, names, tmp_path) == 0
        assert devices.claim_gpu(1, names, tmp_path) == 1
        assert devices.claim_gpu(3, names, tmp_path) == 2
        assert devices.claim_gpu(4, names, tmp_path) == 1  # all held: slot mod n
    finally:
        for lock in devices._HELD[held_before:]:
            lock.release()
        del devices._HELD[held_before:]
    assert devices.claim_gpu(1, names, tmp_path) == 1  # released locks are free again
    devices._HELD.pop().release()


def test_gpu_claims_need_no_user_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no os.getuid: the default lock folder is named after the login name there."""
    from pnas_core import devices

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delattr(os, "getuid")
    monkeypatch.setenv("LOGNAME", "ada lovelace")
    assert devices.claim_gpu(2, ["GPU-aaaa", "GPU-bbbb"]) == 0
    devices._HELD.pop().release()
    assert (tmp_path / "pnas-gpus-ada_lovelace").is_dir()


def test_cache_serves_a_cell_trained_under_another_block_order(
    job: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    orders = [
        "0:max3x3,1:identity;1:avg3x3,0:identity",
        "0:max3x3,1:identity;1:avg3x3,0:identity;2:max3x3,1:identity",
    ]
    swapped = [
        "1:avg3x3,0:identity;0:max3x3,1:identity",
        "1:avg3x3,0:identity;0:max3x3,1:identity;3:max3x3,1:identity",
    ]
    counts = []
    for i, cells in enumerate((orders, swapped)):
        pd.DataFrame({"cell": cells}).to_parquet(job["candidates"])
        assert main(_train_args(job, job["dir"] / f"out{i}.parquet")) == 0
        counts.append(_counts(capsys.readouterr().err))
    assert counts == [(2, 0), (0, 2)]
    first, second = (read_records(job["dir"] / f"out{i}.parquet") for i in range(2))
    assert len(_cache_files(job["cache"])) == 2
    pd.testing.assert_frame_equal(first, second)


def test_a_cache_that_cannot_be_written_still_serves_its_records(
    job: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_train_args(job, job["dir"] / "first.parquet")) == 0
    capsys.readouterr()
    # Lock files cannot be created (as in a read-only cache: root would ignore file modes, a file
    # where the locks folder belongs stops everyone): every record is there, so none is needed.
    for lock in (job["cache"] / "locks").rglob("*.lock"):
        lock.unlink()
    for folder in sorted((job["cache"] / "locks").rglob("*"), reverse=True):
        folder.rmdir()
    (job["cache"] / "locks").rmdir()
    (job["cache"] / "locks").write_text("not a folder")
    assert main(_train_args(job, job["dir"] / "again.parquet")) == 0
    assert _counts(capsys.readouterr().err) == (0, len(CELLS))


def test_progress_bar_only_on_a_terminal(job: dict[str, Path]) -> None:
    # A log file (no terminal) gets the plain per-candidate lines, no progress-bar redraws.
    args = [a for a in _train_args(job, job["dir"] / "o.parquet") if a != "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-m", "pnas_core", *args], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "cell/s" not in proc.stderr and "it/s" not in proc.stderr
    assert _counts(proc.stderr) == (len(CELLS), 0)


def test_kill_9_during_a_rung_then_resume_to_the_full_budget(job: dict[str, Path]) -> None:
    """Early stopping, killed for real: the rung job is SIGKILLed after its first candidate; the rerun
    trains only the unfinished ones, and the full-budget stage resumes every candidate from its rung
    checkpoint to the records an uninterrupted training gives (bitwise, apart from the seconds)."""
    (job["dir"] / "settings.json").write_text(json.dumps({**TINY, "epochs": 2}))
    rung = job["dir"] / "rung1.parquet"
    cmd = [sys.executable, "-m", "pnas_core", *_train_args(job, rung, "--stop-at", "1")]
    env = {**os.environ, "PNAS_THREADS": "1"}
    _kill_after_first_entry(cmd, env, job["cache"])
    finished = {p: p.stat().st_mtime_ns for p in _cache_files(job["cache"])}
    assert 1 <= len(finished) < len(CELLS), "kill the rung job after its first candidate, before the last"
    assert not rung.exists() and not list(job["cache"].glob("*/.*.tmp"))

    rerun = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, env=env, check=True)
    assert _counts(rerun.stderr) == (len(CELLS) - len(finished), len(finished))
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # finished rungs untouched
    assert (read_records(rung)["status"] == "stopped").all()

    full = job["dir"] / "full.parquet"
    resume = [*_train_args(job, full, "--stop-at", "2", "--resume-from", "1")]
    subprocess.run([sys.executable, "-m", "pnas_core", *resume], env=env, check=True)
    plain = job["dir"] / "plain.parquet"
    assert main(_train_args(job, plain, "--cache-dir", str(job["dir"] / "other-cache"))) == 0
    cols = ["cell", "status", "val_acc", "val_curve", "train_loss", "params", "epochs"]
    pd.testing.assert_frame_equal(read_records(full)[cols], read_records(plain)[cols])
