"""``pnas cell show``: canonical text, block descriptions, sizes, errors."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

from pnas_core.cli import main
from pnas_core.space.cells import PNASNET5, parse
from pnas_core.training.complexity import count_mult_adds, count_params
from pnas_core.training.network import NetworkSettings, build_network


def show(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["cell", "show", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_pnasnet5_description(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = show(capsys, PNASNET5)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == f"cell: {PNASNET5}"
    assert "block 1: sep3x3(H[c-2]) + identity(H[c-1])" in out
    assert "block 2: sep5x5(H[c-2]) + max3x3(H[c-2])" in out
    assert "block 5: max3x3(H[c-1]) + sep3x3(block 3)" in out


def test_any_block_order_prints_the_same_text_and_id(capsys: pytest.CaptureFixture[str]) -> None:
    paper_order = (
        "0:sep5x5,0:max3x3;1:sep7x7,1:max3x3;1:sep3x3,1:sep5x5;1:max3x3,4:sep3x3;0:sep3x3,1:identity"
    )
    other = "1:sep5x5,1:sep3x3;1:max3x3,2:sep3x3;1:max3x3,1:sep7x7;1:identity,0:sep3x3;0:max3x3,0:sep5x5"
    head = show(capsys, PNASNET5)[1].splitlines()[:2]
    assert show(capsys, paper_order)[1].splitlines()[:2] == head
    assert show(capsys, other)[1].splitlines()[:2] == head


def test_swapped_halves_print_the_same_canonical_text(capsys: pytest.CaptureFixture[str]) -> None:
    swapped = ";".join(",".join(reversed(block.split(","))) for block in PNASNET5.split(";"))
    assert swapped != PNASNET5
    assert show(capsys, swapped)[1] == show(capsys, PNASNET5)[1]


def test_counts_match_the_builder(capsys: pytest.CaptureFixture[str]) -> None:
    text = "1:identity,0:conv7x1;2:dil3x3,1:avg3x3"
    argv = ["--N", "1", "--F", "8", "--classes", "4", "--image-size", "16", "--in-channels", "1"]
    rc, out, _ = show(capsys, text, *argv, "--stem", "imagenet")
    assert rc == 0
    assert f"cell: {parse(text).text}" in out
    torch.manual_seed(0)
    settings = NetworkSettings(num_classes=4, in_channels=1, cells_per_stack=1, filters=8, stem="imagenet")
    net = build_network(parse(text), settings)
    params = int(re.search(r"parameters: ([\d,]+)", out)[1].replace(",", ""))
    mult_adds = int(re.search(r"multiply-adds: ([\d,]+)", out)[1].replace(",", ""))
    assert params == count_params(net)
    assert mult_adds == count_mult_adds(net, (1, 16, 16)) > 0


def test_released_layout_flag(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = show(capsys, PNASNET5, "--N", "3", "--F", "48", "--reduction-in-stack")
    assert rc == 0 and "9 cells" in out and "parameters: 3,176,602" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["0:sep3x3,1:sep3x3;1:conv9x9,0:sep3x3"], "block 2"),
        (["0:sep3x3,1:sep3x3;3:sep3x3,0:sep3x3"], "block 2"),
        (["0:sep3x3;1:sep3x3"], "block 1"),
        (["0:sep3x3,1:sep3x3", "--F", "2"], "filters"),
        (["0:sep3x3,1:sep3x3", "--image-size", "4"], "--image-size"),
    ],
)
def test_bad_input_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    rc, out, err = show(capsys, *argv)
    assert rc == 2 and out == ""
    assert err.startswith("pnas: error:") and message in err and err.count("\n") == 1


def test_command_line_exit_code() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pnas_core", "cell", "show", "0:sep3x3,9:max3x3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "block 1" in proc.stderr and "input 9" in proc.stderr
