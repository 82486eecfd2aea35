"""Bounded resources and honest errors: a settings file is read within a size and alias limit and
refused with one readable line; Ctrl-C (or SIGTERM) stops a training job and its worker processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pnas_core.cli import main
from pnas_core.errors import PnasError, one_line, shown
from pnas_core.limits import MAX_MESSAGE, MAX_TEXT_FILE_BYTES
from pnas_core.surrogate import SurrogateSettings
from pnas_core.training.train import TrainSettings, load_settings


def alias_bomb(levels: int) -> str:
    """YAML anchors whose last one expands to 10**levels strings, in a few hundred bytes."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_a_settings_alias_bomb_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # It gave a 351 MB "one-line" error: the value printed whole.
    path = tmp_path / "bomb.yaml"
    path.write_text(
        "bombs:\n" + "".join(f"  {line}\n" for line in alias_bomb(7).splitlines()) + "epochs: *a6\n"
    )
    with pytest.raises(PnasError) as caught:
        load_settings(path)
    assert "holds more than 10,000 values (YAML aliases?)" in str(caught.value)
    assert len(str(caught.value)) <= MAX_MESSAGE
    args = [
        "train",
        "--candidates",
        "c.parquet",
        "--settings",
        str(path),
        "--out",
        str(tmp_path / "o.parquet"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < MAX_MESSAGE + 20 and "YAML aliases" in err


def test_values_in_errors_are_cut_short(tmp_path: Path) -> None:
    shared = ["x" * 100] * 20
    nested = [[[shared] * 20] * 20] * 20  # 16 MB when written out whole
    for bad in ({"epochs": nested}, {"optimizer": "sgd\n" * 10_000}, {"x" * 10_000: 1}):
        with pytest.raises(PnasError) as caught:
            TrainSettings.from_dict(bad)
        assert len(str(caught.value)) <= MAX_MESSAGE and "\n" not in str(caught.value)
    with pytest.raises(PnasError, match=r"xgb.subsample must be at most 1, got 2"):
        SurrogateSettings.from_dict({"xgb": {"subsample": 2}})
    assert len(shown(nested)) < 200
    assert one_line("a\nb\x1b[31mred") == "a\\nb\\x1b[31mred"


def test_an_oversized_settings_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"epochs": 1, "pad": "x" * MAX_TEXT_FILE_BYTES}))
    with pytest.raises(PnasError, match=f"larger than {MAX_TEXT_FILE_BYTES:,} bytes"):
        load_settings(path)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupt_stops_a_training_job_and_its_workers(tmp_path: Path, how: str) -> None:
    # With --workers 2, Ctrl-C used to leave the job training every queued candidate to the end.
    candidates, out, cache = tmp_path / "c.parquet", tmp_path / "o.parquet", tmp_path / "cache"
    assert main(["enumerate", "--ops", "sep3x3", "identity", "--out", str(candidates)]) == 0
    settings = tmp_path / "s.json"
    settings.write_text(json.dumps({"dataset": "digits", "image_size": 8, "filters": 8, "epochs": 10**4}))
    argv = ["train", "--candidates", str(candidates), "--settings", str(settings), "--cache-dir", str(cache)]
    job = subprocess.Popen(
        [sys.executable, "-m", "pnas_core", *argv, "--workers", "2", "--threads", "2", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while len(list(cache.rglob("*.lock"))) < 2 and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # until both workers train a candidate
        assert job.poll() is None, job.communicate()[0]
        workers = subprocess.run(["pgrep", "-P", str(job.pid)], capture_output=True, text=True).stdout.split()
        if how == "ctrl-c":
            os.killpg(job.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole group
        else:
            os.kill(job.pid, signal.SIGTERM)  # the job alone, as a scheduler does
        output, _ = job.communicate(timeout=120)
    finally:  # the whole group, workers included, whatever happened (nothing is left when it passes)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
    assert job.returncode == 130 and output.strip().splitlines()[-1] == "pnas: interrupted", output[-2000:]
    time.sleep(1)
    left = [
        p
        for p in workers
        if Path(f"/proc/{p}").exists() and Path(f"/proc/{p}/stat").read_text().split()[2] != "Z"
    ]
    assert not left
    assert not out.exists()
