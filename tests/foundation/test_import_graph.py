"""The product's import graph, read from the source (nothing is imported): no circles, no test kit.

Every ``import`` statement counts, wherever it is: at module level, inside a
function (a lazy import is still a dependency) and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import lsst_spawner

PACKAGE = "lsst_spawner"
ROOT = Path(lsst_spawner.__file__).resolve().parent
TEST_KIT = f"{PACKAGE}.testing"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def is_test_kit(name: str) -> bool:
    return name == TEST_KIT or name.startswith(TEST_KIT + ".")


def product_modules() -> dict[str, Path]:
    return {name: path for name, path in all_modules().items() if not is_test_kit(name)}


def imported_names(name: str, path: Path) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every lsst_spawner module that ``name`` imports."""
    known = all_modules()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target:
                    yield node.lineno, target
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in known:
                    yield node.lineno, submodule
                elif base in known:
                    yield node.lineno, base


def import_graph() -> dict[str, dict[str, int]]:
    """Product module -> {imported product module: first line}; the test kit left out."""
    graph: dict[str, dict[str, int]] = {}
    for name, path in product_modules().items():
        edges: dict[str, int] = {}
        for line, target in imported_names(name, path):
            if target != name and not is_test_kit(target):
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
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
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def describe(component: list[str], graph: dict[str, dict[str, int]]) -> str:
    members = set(component)
    edges = [
        f"{source} imports {target} (line {line})"
        for source in component
        for target, line in sorted(graph[source].items())
        if target in members
    ]
    return "; ".join(edges)


def test_the_graph_reader_sees_relative_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    graph = import_graph()
    # A relative import of a submodule, from a package's __init__ and from a module.
    assert "lsst_spawner.lab.spec" in graph["lsst_spawner.lab.traits"]
    assert "lsst_spawner.identity" in graph["lsst_spawner.lab.spec"]
    # The reader itself finds a circle and a test-kit import when there is one.
    assert cycles({"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3}, "d": {"a": 4}}) == [["a", "b", "c"]]
    source = tmp_path / "sample.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from lsst_spawner.lab import traits\n"
        "def f():\n    from lsst_spawner.testing.oauth.identity import identity_for\n"
    )
    found = [target for _, target in imported_names("lsst_spawner.sample", source)]
    assert found == ["lsst_spawner.lab.traits", "lsst_spawner.testing.oauth.identity"]


def test_product_modules_import_no_circle() -> None:
    graph = import_graph()
    found = [describe(component, graph) for component in cycles(graph)]
    assert found == [], "import circles among product modules:\n" + "\n".join(found)


def test_product_modules_never_import_the_test_kit() -> None:
    offenders = [
        f"{name} line {line} imports {target}"
        for name, path in product_modules().items()
        for line, target in imported_names(name, path)
        if is_test_kit(target)
    ]
    assert offenders == []


def test_no_product_module_is_over_500_lines_and_the_spawner_under_300() -> None:
    """Issue 13's size limits: the spawner is glue (traits and hooks), and no product module
    grows past what one reader can hold; the test kit is not product code."""
    sizes = {name: len(path.read_text().splitlines()) for name, path in product_modules().items()}
    assert sizes[f"{PACKAGE}.spawner"] < 300, sizes[f"{PACKAGE}.spawner"]
    assert {name: n for name, n in sizes.items() if n > 500} == {}
