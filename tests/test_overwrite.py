"""No command writes over its inputs: every writing ``pnas`` command refuses an output that is one of
its inputs (also through a symbolic or hard link), inside a folder it reads, or a folder holding an
input, with one line, before reading anything (the inputs here are not even valid files)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from pnas_core.cli import build_parser, main

CELL = "0:sep3x3,1:identity"
PRECIOUS = b"precious bytes, not a valid file of any kind\n"

CASES = {
    "train": ("in.parquet", ["train", "--candidates", "{x}", "--settings", "{t}/s.json", "--out", "{x}"]),
    "promote": (
        "in.parquet",
        ["promote", "--candidates", "{t}/c.parquet", "--records", "{x}", "--keep", "0.5", "--out", "{x}"],
    ),
    "finish-level": ("in.parquet", ["finish-level", "--out", "{x}", "{t}/r.parquet", "{x}"]),
    "merge-records": ("in.parquet", ["merge-records", "--out", "{x}", "{t}/r.parquet", "{x}"]),
    "fit-surrogate": ("in.parquet", ["fit-surrogate", "--records", "{x}", "--out", "{t}"]),
    "expand-score": (
        "in.parquet",
        ["expand-score", "--parents", "{x}", "--surrogate", "{t}/s", "--out", "{x}"],
    ),
    "select": ("in.parquet", ["select", "--scored", "{x}", "--k", "2", "--out", "{x}"]),
    "plan": ("c.yaml", ["plan", "--config", "{x}", "--train-settings", "{t}/s.json", "--out", "{x}"]),
    "init": ("c.yaml", ["init", "--data", "{t}", "--out", "{x}"]),
    "eval-surrogate": ("in.parquet", ["eval-surrogate", "--records", "{x}", "--blocks", "1", "--out", "{x}"]),
    "summarize": (
        "in.parquet",
        ["summarize", "--candidates", "{t}/c.parquet", "--trained", "{x}", "--out", "{x}", "--best", "{t}/b"],
    ),
    "figures quality": (
        "f.csv",
        ["figures", "quality", "--quality", "{x}", "--out-dir", "{t}", "--stem", "f"],
    ),
    "figures efficiency": (
        "f.csv",
        ["figures", "efficiency", "--summary", "{x}", "--out-dir", "{t}", "--stem", "f"],
    ),
    "figures predictions": (
        "f.csv",
        ["figures", "predictions", "--summary", "{x}", "--out-dir", "{t}", "--stem", "f"],
    ),
    "figures distribution": (
        "f.pdf",
        [
            "figures",
            "distribution",
            "--summary",
            "{t}/s",
            "--random-trained",
            "{x}",
            "--random-candidates",
            "{t}/c",
            "--out-dir",
            "{t}",
            "--stem",
            "f",
        ],
    ),
    "figures pareto": (
        "f.png",
        [
            "figures",
            "pareto",
            "--summary",
            "{t}/s",
            "--random-trained",
            "{t}/r",
            "--random-candidates",
            "{x}",
            "--out-dir",
            "{t}",
            "--stem",
            "f",
        ],
    ),
    "figures cell": ("f.png", ["figures", "cell", "--best-cell", "{x}", "--out-dir", "{t}", "--stem", "f"]),
    "final-train": (
        "settings.json",
        ["final-train", "--cell", CELL, "--settings", "{x}", "--out-dir", "{t}"],
    ),
    "export": ("model.pt", ["export", "--model", "{t}", "--out", "{x}"]),
    "bench-table": (
        "in.parquet",
        ["bench-table", "--trained", "{x}", "--max-blocks", "1", "--threads", "1", "--out", "{x}"],
    ),
    "simulate": ("strategies.csv", ["simulate", "--table", "{x}", "--out-dir", "{t}"]),
    "bench-quality": ("in.parquet", ["bench-quality", "--table", "{x}", "--out", "{x}"]),
    "replicate": (
        "in.parquet",
        [
            "replicate",
            "--strategy",
            "random",
            "--name",
            "random",
            "--settings",
            "{x}",
            "--max-blocks",
            "1",
            "--beam-size",
            "1",
            "--cache-dir",
            "{t}/cache",
            "--out",
            "{x}",
        ],
    ),
    "compare-replicates": (
        "paired.csv",
        ["compare-replicates", "--runs", "{t}/r.parquet", "{x}", "--out-dir", "{t}"],
    ),
}
"""Per writing command: the input file's name and an argument list whose output is that input."""

NO_INPUTS = {"enumerate", "sample", "schema", "bench-cells"}
"""Commands that write but read no file: nothing of theirs to overwrite."""


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    """Every runnable subcommand ('figures quality', 'train', ...) and its parser."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found |= leaf_commands(sub, f"{prefix}{name} ") or {f"{prefix}{name}": sub}
    return found


def writes(parser: argparse.ArgumentParser) -> bool:
    return any(a.dest in ("out", "out_dir") for a in parser._actions)


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_every_writing_command_is_covered() -> None:
    leaves = leaf_commands(build_parser())
    writing = {name for name, sub in leaves.items() if writes(sub)}
    assert writing - NO_INPUTS == set(CASES)
    for name in CASES:  # the check runs from the parser's defaults, before the command
        assert leaves[name].get_default("paths") is not None, name


@pytest.mark.parametrize("command", sorted(CASES))
def test_output_that_is_an_input_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, argv = CASES[command]
    x = tmp_path / name
    x.write_bytes(PRECIOUS)
    code, err = run(capsys, [a.replace("{x}", str(x)).replace("{t}", str(tmp_path)) for a in argv])
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and str(x) in err, err
    assert "is the input" in err or "overlap" in err or "inside the input folder" in err, err
    assert x.read_bytes() == PRECIOUS


@pytest.mark.parametrize("link", ["symlink", "hardlink", "default"])
def test_export_refuses_a_link_to_its_model(
    link: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the case: --out at the final model.pt replaced 600 epochs of training with TorchScript
    model = tmp_path / "final" / "model.pt"
    model.parent.mkdir()
    model.write_bytes(PRECIOUS)
    out = tmp_path / "other.pt"
    if link == "symlink":
        out.symlink_to(model)
        argv = ["export", "--model", str(model.parent), "--out", str(out)]
    elif link == "hardlink":
        os.link(model, out)
        argv = ["export", "--model", str(model.parent), "--out", str(out)]
    else:  # the default output beside a model file named like the export
        model = model.rename(tmp_path / "final" / "model.torchscript.pt")
        argv = ["export", "--model", str(model)]
    code, err = run(capsys, argv)
    assert code == 2 and "is the input" in err and len(err.strip().splitlines()) == 1, err
    assert model.read_bytes() == PRECIOUS


def test_folder_inputs_and_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    surrogate = tmp_path / "surrogate"
    surrogate.mkdir()
    (surrogate / "manifest.json").write_bytes(PRECIOUS)
    records = tmp_path / "r.parquet"
    cases = [
        (
            [
                "expand-score",
                "--parents",
                str(records),
                "--surrogate",
                str(surrogate),
                "--out",
                str(surrogate / "manifest.json"),
            ],
            "inside the input folder",
        ),
        (
            [
                "fit-surrogate",
                "--records",
                str(records),
                "--warm-from",
                str(surrogate),
                "--out",
                str(surrogate),
            ],
            "overlap",
        ),
        (
            [
                "fit-surrogate",
                "--records",
                str(records),
                "--warm-from",
                str(surrogate),
                "--out",
                str(surrogate / "new"),
            ],
            "overlap",
        ),
        (
            [
                "summarize",
                "--candidates",
                str(records),
                "--trained",
                str(records),
                "--out",
                str(tmp_path / "s"),
                "--best",
                str(tmp_path / "s"),
            ],
            "given twice",
        ),
    ]
    for argv, message in cases:
        code, err = run(capsys, argv)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert (surrogate / "manifest.json").read_bytes() == PRECIOUS
