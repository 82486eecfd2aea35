"""pyproject.toml: one xgboost on every platform, every third-party import declared, the license."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PLATFORMS = {
    "linux": {"sys_platform": "linux", "platform_system": "Linux", "os_name": "posix"},
    "macos": {"sys_platform": "darwin", "platform_system": "Darwin", "os_name": "posix"},
    "windows": {"sys_platform": "win32", "platform_system": "Windows", "os_name": "nt"},
}
SOURCE_DIRS = ("pnas_core", "workflow/scripts", "bench", "tests")


def _project() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


def _requirements(extra: str | None = None) -> list[Requirement]:
    project = _project()
    texts = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return [Requirement(t) for t in texts]


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_each_platform_gets_exactly_one_xgboost(platform: str) -> None:
    env = {**PLATFORMS[platform], "extra": ""}
    chosen = [r.name for r in _requirements() if r.marker is None or r.marker.evaluate(env)]
    xgb = [n for n in chosen if canonicalize_name(n).startswith("xgboost")]
    assert xgb == (["xgboost-cpu"] if platform == "linux" else ["xgboost"])
    assert len(chosen) == len(set(chosen))


def test_slurm_plugin_is_an_extra_and_ci_installs_it() -> None:
    core = {canonicalize_name(r.name) for r in _requirements()}
    assert "snakemake-executor-plugin-slurm" not in core
    assert {r.name for r in _requirements("slurm")} == {"snakemake-executor-plugin-slurm"}
    test_extra = {canonicalize_name(r.name): r.extras for r in _requirements("test")}
    assert {"slurm", "onnx"} <= test_extra[canonicalize_name(_project()["name"])]


def _imported_top_modules() -> dict[str, str]:
    """Top-level module name -> first file importing it, over the project's Python sources."""
    found: dict[str, str] = {}
    files = [f for d in SOURCE_DIRS for f in sorted((ROOT / d).rglob("*.py"))]
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), filename=str(f))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(f.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared() -> None:
    project = _project()
    declared = {canonicalize_name(Requirement(t).name) for t in project["dependencies"]}
    for texts in project["optional-dependencies"].values():
        declared |= {canonicalize_name(Requirement(t).name) for t in texts}
    local = {"pnas_core", *(p.stem for d in ("tests", "bench") for p in (ROOT / d).glob("*.py"))}
    dists = packages_distributions()
    undeclared = []
    for module, where in sorted(_imported_top_modules().items()):
        if module in sys.stdlib_module_names or module in local:
            continue
        names = {canonicalize_name(d) for d in dists.get(module, [])}
        if not names & declared:
            undeclared.append(f"{module} ({where}; distributions {sorted(names) or 'none installed'})")
    assert not undeclared, f"imported but not in pyproject.toml: {undeclared}"


def test_license_file_is_the_apache_license_pyproject_names() -> None:
    project = _project()
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text
