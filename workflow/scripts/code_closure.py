"""Code hashes of what each rule runs, read from the source with ``ast`` (nothing is imported).

A rule that runs ``pnas <subcommand>`` runs the CLI entry point (``pnas_core/cli/__init__.py``) and one
command function, e.g. ``train_cmds.run_train``. Its *closure* is the command's CLI module, the imports
at that module's top level and inside the command function (and inside the module's functions that
it calls, transitively), and from there every ``pnas_core`` module those import, at any depth, at top
level or inside functions, with the ``__init__.py`` of every package on the way. :func:`command_hash`
hashes the contents of those files; a rule puts it in ``params`` so that editing any file it runs
reruns it, and nothing else does. ``workflow/rules/common.smk`` imports this file at parse time
(stdlib only, a few milliseconds); ``python workflow/scripts/code_closure.py train_cmds.run_train``
prints a closure.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

PACKAGE = "pnas_core"


def package_dir() -> Path:
    """The ``pnas_core`` folder Python would import (without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {PACKAGE} package is not installed (pip install -e .)")
    return Path(next(iter(spec.submodule_search_locations)))


def module_file(root: Path, module: str) -> Path | None:
    """The file of ``pnas_core.x.y`` under ``root`` (the package folder), or None if there is none."""
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """Absolute names an import statement in ``module`` may load: the module and, for ``from m import
    x``, also ``m.x`` (a submodule when such a file exists)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".")
        anchor = anchor if is_package else anchor[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join([*anchor, base]) if base else ".".join(anchor)
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def _type_checking(node: ast.AST) -> bool:
    """An ``if TYPE_CHECKING:`` block (its imports never run)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """``ast.walk`` that skips ``if TYPE_CHECKING:`` bodies."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        if _type_checking(current):
            todo += current.orelse
        else:
            todo += ast.iter_child_nodes(current)


def _imports(nodes: list[ast.AST], module: str, is_package: bool) -> set[str]:
    """``pnas_core`` modules the statements in ``nodes`` (of ``module``) may import, at any depth."""
    names: set[str] = set()
    for node in nodes:
        for sub in _walk(node):
            if isinstance(sub, ast.Import | ast.ImportFrom):
                names.update(_imported(sub, module, is_package))
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


@cache
def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_bytes(), filename=str(path))


def module_closure(root: Path, modules: set[str]) -> set[Path]:
    """Files of ``modules`` and of every ``pnas_core`` module they import, with parent packages."""
    files: set[Path] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        parents = [".".join(parts[:i]) for i in range(1, len(parts))]
        path = module_file(root, name)
        if path is None:  # ``from pnas_core.x import name`` where name is not a submodule
            continue
        if path in files:
            continue
        files.add(path)
        todo += parents
        todo += _imports([_parse(path)], name, path.name == "__init__.py")
    return files


def command_files(root: Path, command: str) -> set[Path]:
    """The closure of ``<cli module>.<function>`` (e.g. ``train_cmds.run_train``), with the entry point."""
    cli_name, func_name = command.split(".")
    module = f"{PACKAGE}.cli.{cli_name}"
    path = module_file(root, module)
    if path is None:
        raise RuntimeError(f"no CLI module {module} in {root}")
    tree = _parse(path)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    if func_name not in functions:
        raise RuntimeError(f"{path} has no function {func_name!r}")
    top = [n for n in tree.body if not isinstance(n, ast.FunctionDef | ast.ClassDef)]
    used, todo = set(), [func_name]
    while todo:
        name = todo.pop()
        if name in used:
            continue
        used.add(name)
        calls = {n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name)}
        todo += sorted(calls & functions.keys())
    roots = _imports(top + [functions[f] for f in used], module, False) | {f"{PACKAGE}.cli"}
    return {path} | module_closure(root, roots)


def files_hash(root: Path, files: set[Path]) -> str:
    """12 hex of the SHA-256 over the files' paths (relative to ``root``) and contents, sorted."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def command_hash(command: str, root: Path | None = None) -> str:
    """Hash of the closure of a ``pnas`` command function, e.g. ``surrogate_cmds.run_fit``."""
    root = package_dir() if root is None else root
    return files_hash(root, command_files(root, command))


def script_hash(script: Path, root: Path | None = None) -> str:
    """Hash of the ``pnas_core`` modules a workflow script imports (Snakemake tracks the script)."""
    root = package_dir() if root is None else root
    return files_hash(root, module_closure(root, _imports([_parse(script)], "__main__", False)))


if __name__ == "__main__":
    top = package_dir()
    for arg in sys.argv[1:]:
        print(f"{arg} {command_hash(arg, top)}")
        for f in sorted(command_files(top, arg)):
            print(f"  {f.relative_to(top)}")
