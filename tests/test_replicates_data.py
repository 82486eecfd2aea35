"""The ten-seed replicate run tables kept in bench/data/replicates_8ops reprint the comparison that
bench/RESULTS.md quotes ("With real training", issue 24), line for line."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_project import REPO

from pnas_core.cli import main

RUNS = REPO / "bench" / "data" / "replicates_8ops"


def test_kept_run_tables_reprint_the_quoted_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = sorted(str(p) for p in RUNS.glob("*/seed*.parquet"))
    assert len(paths) == 30  # PNAS, random search and evolution, ten seeds each
    assert main(["compare-replicates", "--runs", *paths, "--out-dir", str(tmp_path)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    quoted = (REPO / "bench" / "RESULTS.md").read_text().splitlines()
    missing = [line for line in printed if line not in quoted and not line.startswith("-> ")]
    assert not missing, missing
    assert any(line.startswith("pnas      evolution  best        M models") for line in printed)
