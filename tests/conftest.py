"""Shared fixtures, and what keeps the suite correct and fast under pytest-xdist (``-n 2`` in
pyproject.toml): a fixture shared by several tests runs once, not once per worker; the slow tests are
handed out first; each module starts with the same torch threads, whatever the module before it set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from workflow_project import make_project, snakemake

WORKER_COUNT = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
# Alone: torch's default. Beside other workers: a share of the cores, so the workers do not oversubscribe.
THREADS = torch.get_num_threads() if WORKER_COUNT == 1 else max(1, CORES // WORKER_COUNT)


@pytest.fixture(scope="session")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project that ran the tiny config's whole DAG (the README's command), once per session.

    Tests may change it only if they leave it finished (byte-identical outputs, nothing to do). What the
    run printed to the terminal is kept in ``terminal.out`` and ``terminal.err`` beside it."""
    root = make_project(tmp_path_factory.mktemp("wf"))
    proc = snakemake(root)
    (root / "terminal.out").write_text(proc.stdout)
    (root / "terminal.err").write_text(proc.stderr)
    return root


@pytest.fixture(autouse=True, scope="module")
def _torch_threads() -> None:
    """Every module starts with THREADS torch threads (a test or fixture setting one thread for
    itself does not leak into the next module)."""
    torch.set_num_threads(THREADS)


def _shared_fixtures(item: pytest.Item) -> set[str]:
    """Group names for the module- and session-scoped fixtures of this suite that ``item`` uses: its
    module's path for a module-scoped one, the fixture's name for a session-scoped one."""
    groups = set()
    for name, defs in item._fixtureinfo.name2fixturedefs.items():
        fixture = defs[-1]
        if not fixture.baseid or name == "_torch_threads":  # pytest's and plugins' own; the above
            continue
        if fixture.scope == "session":
            groups.add(name)
        elif fixture.scope == "module":
            groups.add(item.nodeid.split("::")[0])
    return groups


def pytest_itemcollected(item: pytest.Item) -> None:
    """Under ``--dist loadgroup``, the tests sharing a fixture go to one worker together, so it runs once."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        for group in sorted(_shared_fixtures(item)):
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist, the slow tests first (with ``--no-loadscope-reorder`` the workers take the tests in
    this order), so that no worker is left with a long one at the end."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
