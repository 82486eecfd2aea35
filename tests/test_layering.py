"""The package's layering, read from the source with ``ast`` (nothing is imported; well under a second).

- ``pnas_core.space.cells`` needs only numpy (and the standard library);
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
LAYERS = ("", "space", "io", "surrogate", "training", "search", "figures", "cli")
"""The package's layers, lowest first: "" is the foundation (``pnas_core/__init__.py``, ``errors``,
``limits``, ``names``, ``rungs``, ``stats``, ``devices``, ``locks``), then one subpackage per role; ``__main__`` stands on top."""
DEFERRED_THIRD_PARTY = {
    "pnas_core.training.data": {"sklearn", "torchvision"},
    "pnas_core.training.splits": {"sklearn"},
    "pnas_core.training.model_io": {"onnx", "onnxruntime", "onnxscript"},
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


def layer(module: str) -> int:
    """The index in :data:`LAYERS` of a ``pnas_core`` module (``results``, the notebook's one call,
    beside the CLI, which reads it for ``pnas track``; ``__main__`` above them all)."""
    parts = module.split(".")
    if parts[1:] == ["results"]:
        return LAYERS.index("cli")
    if parts[1:] == ["__main__"]:
        return len(LAYERS)
    sub = parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else ""
    assert sub in LAYERS, f"{module}: pnas_core/{sub}/ is not in LAYERS"
    return LAYERS.index(sub)


def test_every_subpackage_stands_in_a_layer() -> None:
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(LAYERS) - {""}


def test_no_module_imports_from_a_higher_layer() -> None:
    for module in MODULES:
        for name, _ in imports(module):
            target = name if name in MODULES else name.rsplit(".", 1)[0]
            if target in MODULES:
                assert layer(target) <= layer(module), f"{module} imports {target}: a higher layer"


def test_space_needs_only_numpy() -> None:
    assert third_party(reachable("pnas_core.space.cells")) == {"numpy"}


def test_the_rules_the_workflow_reads_need_only_the_standard_library() -> None:
    """workflow/scripts/config_check.py imports these at parse time: they stay that cheap."""
    for module in ("pnas_core.limits", "pnas_core.rungs"):
        assert third_party(reachable(module)) == set(), module


def test_predictors_never_reach_the_network_or_training() -> None:
    for module in (m for m in MODULES if m.startswith("pnas_core.surrogate")):
        assert not any(m.startswith("pnas_core.training") for m in reachable(module)), module


def test_only_figures_import_matplotlib() -> None:
    """Compute modules never draw: nothing below the CLI but the figures reaches matplotlib, and the
    CLI imports it only through the figures."""
    for module in MODULES:
        if module.startswith(("pnas_core.figures", "pnas_core.cli", "pnas_core.__main__")):
            continue
        assert "matplotlib" not in third_party(reachable(module)), f"{module} reaches matplotlib"
    for module in (m for m in MODULES if m.startswith("pnas_core.cli")):
        assert "matplotlib" not in third_party({m for m, _ in imports(module)}), module


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
