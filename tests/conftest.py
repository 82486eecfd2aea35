"""Shared fixtures, and what keeps the suite correct and fast under pytest-xdist (``-n 2`` in
pyproject.toml): a fixture shared by several tests runs once, not once per worker; the slow tests are
handed out first; each module starts with the same torch threads, whatever the module before it set."""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    """Under xdist: before the other hooks (xdist's ``--dist loadgroup`` names each test's group
    there), group the tests sharing a fixture; after them (with ``--no-loadscope-reorder`` the workers
    take the tests in this order), the slow tests first, so that no worker is left with a long one at
    the end."""
    under_xdist = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    if under_xdist:
        _group_by_shared_fixtures(items)
    yield
    if under_xdist:
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def _group_by_shared_fixtures(items: list[pytest.Item]) -> None:
    """One xdist group per connected set of shared fixtures, so that each runs once, on one worker
    (xdist names a test in two groups by both joined, a third group another worker may take)."""
    parent: dict[str, str] = {}

    def root(group: str) -> str:
        while parent.setdefault(group, group) != group:
            group = parent[group]
        return group

    groups = {item.nodeid: sorted(_shared_fixtures(item)) for item in items}
    for names in groups.values():
        for name in names[1:]:
            a, b = root(names[0]), root(name)
            parent[max(a, b)] = min(a, b)
    for item in items:
        if groups[item.nodeid]:
            item.add_marker(pytest.mark.xdist_group(root(groups[item.nodeid][0])))
