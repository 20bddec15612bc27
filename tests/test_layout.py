"""The import structure: samrt never imports samexport or torch, neither package has an import
cycle, and project modules are imported at module level (function-level imports are kept for
optional dependencies, and in samexport's command line, which starts without torch)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"samrt": ROOT / "runtime" / "samrt", "samexport": ROOT / "samexport"}
# samexport's entry points import torch-backed modules inside the command that needs them, so
# `samexport --help` and the torch-free commands start in a fraction of the time.
LAZY_ENTRY_POINTS = {"samexport.cli", "samexport.console"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """Project modules an import statement names (a package's submodules included)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    names = [target]
    names += [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES]
    return names


def _imports(module: str, path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """(project modules imported at module level, [(line, module)] imported inside functions)."""
    tree = ast.parse(path.read_text())
    top: set[str] = set()
    local: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for name in _resolve(module, path, child):
                    if name.split(".")[0] in PACKAGES:
                        (local.append((child.lineno, name)) if in_function else top.add(name))
            elif isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            else:
                visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return top, local


def _with_parents(name: str, importer: str) -> set[str]:
    """``name`` and the packages importing it runs, below the top-level package, leaving out
    the importer's own enclosing packages (already being imported when the importer runs)."""
    parts = name.split(".")
    enclosing = {".".join(importer.split(".")[:i]) for i in range(1, len(importer.split(".")))}
    return ({".".join(parts[:i]) for i in range(2, len(parts) + 1)} & set(MODULES)) - enclosing


def test_samrt_never_imports_samexport_or_torch():
    for module, path in MODULES.items():
        if not module.startswith("samrt"):
            continue
        text = path.read_text()
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("samexport", "torch") for n in names), (module, node.lineno)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycles(package):
    graph = {}
    for module, path in MODULES.items():
        if module.startswith(package):
            top, _ = _imports(module, path)
            graph[module] = set().union(*(_with_parents(n, module) for n in top)) - {module} if top else set()
    # Tarjan's strongly connected components: any component of two or more modules is a cycle.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    assert not cycles, cycles


def test_project_modules_are_imported_at_module_level():
    found = []
    for module, path in MODULES.items():
        if module in LAZY_ENTRY_POINTS:
            continue
        _, local = _imports(module, path)
        found += [f"{module}:{line} imports {name}" for line, name in local]
    assert not found, found
