"""Every path of this repository and every ``pnas_core.*`` name the documentation cites exists: a
moved or renamed module fails here, not in a reader's hands."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [
    "README.md",
    "docs/method.md",
    "config/README.md",
    "config/profiles/README.md",
    "bench/RESULTS.md",
    *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "workflow" / "report").glob("*")),
]
PATH = re.compile(r"(?<![\w./-])((?:pnas_core|workflow|config|docs|bench|tests|\.ci)/[\w./*-]*\w)(?![\w<{])")
NAME = re.compile(r"(?<![\w./-])(pnas_core(?:\.\w+)+)")


def cited(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    return sorted({(doc, m.group(1)) for doc in DOCS for m in pattern.finditer((REPO / doc).read_text())})


def resolves(name: str) -> bool:
    """``name`` is a module, or an attribute (at any depth) of the longest module it starts with."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@pytest.mark.parametrize(("doc", "path"), cited(PATH))
def test_cited_path_exists(doc: str, path: str) -> None:
    assert any(REPO.glob(path)) if "*" in path else (REPO / path).exists(), f"{doc} cites {path}"


@pytest.mark.parametrize(("doc", "name"), cited(NAME))
def test_cited_name_exists(doc: str, name: str) -> None:
    assert resolves(name), f"{doc} cites {name}"
