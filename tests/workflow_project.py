"""Helpers for the end-to-end tests: a private copy of the workflow, and Snakemake run in it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"


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
