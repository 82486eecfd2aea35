"""The package's layering, read from the source with ``ast`` (nothing is imported; well under a second).

- ``pnas_core.space`` needs only numpy (and the standard library);
- the predictors (``pnas_core.surrogate``) never reach the network builder or training, at any depth;
- nothing in ``pnas_core`` imports Snakemake;
- library modules import at the top: only the CLI defers imports (so ``pnas --help`` stays fast),
  and only the heavy third-party back-ends of one dataset format are imported where they are used.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "pnas_core"
STDLIB = sys.stdlib_module_names
NETWORK_OR_TRAINING = {"network", "ops", "complexity", "data", "loop", "train", "final", "model_io"}
DEFERRED_THIRD_PARTY = {
    "pnas_core.data": {"sklearn", "torchvision"},
    "pnas_core.splits": {"sklearn"},
    "pnas_core.model_io": {"onnx", "onnxruntime", "onnxscript"},
}
"""Function-level imports allowed outside the CLI: the dataset back-ends (scikit-learn for digits and
stratified splits, torchvision for CIFAR-10), each used by one dataset only, and the optional `onnx`
extra, imported only by the ONNX export."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@cache
def imports(module: str) -> frozenset[tuple[str, bool]]:
    """(imported module, inside a function) for every import statement of ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    found: set[tuple[str, bool]] = set()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.update((a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{module}: relative import"
                found.add((child.module or "", in_function))
                found.update((f"{child.module}.{a.name}", in_function) for a in child.names)
            visit(child, nested)

    visit(tree, False)
    return frozenset(found)


def reachable(module: str) -> set[str]:
    """Every name ``module`` imports, directly or through pnas_core modules, with parent packages."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in MODULES:
            parts = name.split(".")
            todo += [".".join(parts[:i]) for i in range(1, len(parts))]
            todo += [m for m, _ in imports(name)]
    return seen


def third_party(names: set[str]) -> set[str]:
    tops = {n.split(".")[0] for n in names}
    return {t for t in tops if t and t not in STDLIB and t != "pnas_core"}


def test_space_needs_only_numpy() -> None:
    assert third_party(reachable("pnas_core.space")) == {"numpy"}


def test_predictors_never_reach_the_network_or_training() -> None:
    forbidden = {f"pnas_core.{m}" for m in NETWORK_OR_TRAINING}
    for module in (m for m in MODULES if m.startswith("pnas_core.surrogate")):
        assert not reachable(module) & forbidden, module


def test_nothing_imports_snakemake() -> None:
    for module in MODULES:
        assert "snakemake" not in third_party({m for m, _ in imports(module)}), module


def test_library_modules_import_at_the_top() -> None:
    for module in MODULES:
        if module.startswith("pnas_core.cli"):
            continue
        deferred = {m for m, inside in imports(module) if inside}
        allowed = DEFERRED_THIRD_PARTY.get(module, set())
        assert {m.split(".")[0] for m in deferred} <= allowed, (
            f"{module} imports inside a function: {deferred}"
        )
