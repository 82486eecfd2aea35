"""Honest ends: a full disk says "no space left on device" and names the file, as the last line of a
job's log; a closed stdout ends a command quietly; ``pnas predict`` streams its images in batches."""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from pnas_core.cli import SIGPIPE_EXIT
from pnas_core.errors import PnasError
from pnas_core.space.cells import parse
from pnas_core.training.model_io import load_model, predict_files, save_model
from pnas_core.training.network import NetworkSettings, build_network

CELL = "0:sep3x3,1:identity"
REPO = Path(__file__).resolve().parents[1]
FULL = "no space left on device: cannot write"


def tiny_model(path: Path, channels: int = 3, size: int = 8) -> Path:
    """A small untrained pnas model file at ``path``."""
    settings = NetworkSettings(num_classes=3, in_channels=channels, cells_per_stack=1, filters=4)
    torch.manual_seed(0)
    model = build_network(parse(CELL), settings)
    info = {
        "cell": parse(CELL).text,
        "network": dataclasses.asdict(settings),
        "settings": {},
        "classes": ["a", "b", "c"],
        "mean": [100.0] * channels,
        "std": [50.0] * channels,
        "input_shape": [channels, size, size],
    }
    save_model(path, model, info)
    return path


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a real 64 KiB tmpfs whose every block is taken (needs root and mount)."""
    folder = tmp_path / "full"
    folder.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: the simulated full-disk tests cover this path")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.decode().strip()}): the simulated tests cover it"
        )
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield folder
    finally:  # lazily: a file a failed writer still holds open must not leave the mount behind
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def pnas_logged(args: str, log: Path, cwd: Path, prelude: str = "") -> int:
    """Run ``pnas args > log 2>&1`` as a workflow job does (``prelude``: Python run before it)."""
    code = f"import sys; {prelude}\nfrom pnas_core.cli import main; sys.exit(main(sys.argv[1:]))"
    command = f"{sys.executable} -c {shlex.quote(code)} {args} > {log} 2>&1"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env).returncode


def test_full_disk_while_torch_saves_names_the_file(full_disk: Path, tmp_path: Path) -> None:
    model, info = load_model(tiny_model(tmp_path / "model.pt"))
    with pytest.raises(PnasError, match=re.escape(f"{FULL} {full_disk / 'model.pt'}")):
        save_model(full_disk / "model.pt", model, dataclasses.asdict(info))
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]  # no temporary file left


@pytest.mark.parametrize("command", ["export", "sample"])
def test_full_disk_is_the_last_line_of_the_job_log(command: str, full_disk: Path, tmp_path: Path) -> None:
    # export: TorchScript's writer aborted the process on a full disk (no error line at all); sample:
    # its stdout line, flushed at exit, came after the error line
    if command == "export":
        args = f"export --model {tiny_model(tmp_path / 'model.pt')} --out {full_disk / 'model.ts.pt'}"
        target = full_disk / "model.ts.pt"
    else:
        args = f"sample --blocks 2 --n auto --beam-size 4 --max-blocks 2 --out {full_disk / 'c.parquet'}"
        target = full_disk / "c.parquet"
    log = tmp_path / "job.log"
    assert pnas_logged(args, log, tmp_path) == 2, log.read_text()
    lines = log.read_text().splitlines()
    assert lines[-1].startswith(f"pnas: error: {FULL} {target}"), lines
    assert not any("Traceback" in line for line in lines), lines
    if command == "sample":
        assert lines[0].startswith("budget of the search")


def test_simulated_full_disk_is_the_last_line_of_the_job_log(tmp_path: Path) -> None:
    # ENOSPC raised at the write boundary (as pyarrow raises it), in a real process with a real log
    prelude = (
        "import errno, pyarrow.parquet as pq\n"
        "def full(*a, **k): raise OSError(errno.ENOSPC, 'Error writing bytes to file. No space left on device')\n"
        "pq.write_table = full"
    )
    out = tmp_path / "c.parquet"
    log = tmp_path / "job.log"
    args = f"sample --blocks 2 --n auto --beam-size 4 --max-blocks 2 --out {out}"
    assert pnas_logged(args, log, tmp_path, prelude) == 2
    lines = log.read_text().splitlines()
    assert lines[0].startswith("budget of the search") and lines[-1].startswith(f"pnas: error: {FULL} {out}")
    assert not list(tmp_path.glob(".c.parquet.*"))


def test_a_library_error_on_a_full_disk_is_named_for_what_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torch's own writer says "unexpected pos"; with no block left that is a full disk
    from pnas_core.io import atomic

    class NoBlocks:
        f_bavail = f_bfree = 0

    def torch_style(fh: object) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 167680 vs 167632")

    monkeypatch.setattr(atomic.os, "statvfs", lambda path: NoBlocks())
    with pytest.raises(PnasError, match=re.escape(f"{FULL} {tmp_path / 'm.pt'}")):
        with atomic.atomic_path(tmp_path / "m.pt") as tmp:
            torch_style(tmp)
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="unexpected pos"):  # blocks left: not a full disk
        with atomic.atomic_path(tmp_path / "m.pt") as tmp:
            torch_style(tmp)


@pytest.mark.parametrize("buffered", [True, False])
@pytest.mark.parametrize(
    "argv", [["cell", "show", CELL], ["space", "count", "--blocks", "2"], ["--help"], ["--version"]]
)
def test_a_closed_stdout_ends_quietly(argv: list[str], buffered: bool) -> None:
    # a real pipe whose reading end is already closed (`pnas ... | head -1` once head has exited)
    read, write = os.pipe()
    os.close(read)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {"PYTHONPATH": str(REPO)}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pnas_core", *argv], stdout=write, stderr=subprocess.PIPE, env=env
    )
    os.close(write)
    assert done.stderr.decode() == ""
    # argparse itself ignores a failed write of --help or --version
    assert done.returncode == (0 if argv[0].startswith("--") and not buffered else SIGPIPE_EXIT)


def test_predict_streams_batches_with_the_same_results(tmp_path: Path) -> None:
    from PIL import Image

    model, info = load_model(tiny_model(tmp_path / "model.pt"))
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(7):
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    whole = list(predict_files(model, info, [folder]))
    batched = list(predict_files(model, info, [folder], batch_size=2))
    assert [(p.file, p.top[0][0]) for p in batched] == [(p.file, p.top[0][0]) for p in whole]
    assert len(whole) == 7
    assert np.allclose([p.top[0][1] for p in batched], [p.top[0][1] for p in whole], rtol=0, atol=1e-6)
    (folder / "5.png").write_bytes(b"not a png")
    stream = predict_files(model, info, [folder], batch_size=2)
    assert [next(stream).file.name for _ in range(4)] == ["0.png", "1.png", "2.png", "3.png"]  # before 5.png
    with pytest.raises(PnasError, match=r"5\.png"):
        next(stream)
