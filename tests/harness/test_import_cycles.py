"""The package ``biobench`` has no import cycle among its modules.

Imports are read with :mod:`ast`, not by importing: every ``import`` / ``from ... import`` at
module level counts, including those under ``if TYPE_CHECKING:`` (a cycle there is still a
cycle in the design, and type checkers follow it).  Imports inside a function body are exempt:
they run when the function is called, after every module has loaded, and are the documented way
to defer a heavy dependency (torch, matplotlib, the plugin manager).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "biobench"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level_imports(path: Path, name: str) -> set[str]:
    """Dotted names a module imports at module level (function bodies left out)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (node.level - 1)]
                    base = ".".join(parts + ([node.module] if node.module else []))
                found.add(base)
                # ``from pkg import mod`` imports the module ``pkg.mod``.
                found.update(f"{base}.{alias.name}" for alias in node.names)
            for field in ("body", "orelse", "finalbody", "handlers"):
                children = getattr(node, field, None)
                if isinstance(children, list):  # a class body runs at import too
                    visit(children)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)).body)
    return found


def import_graph() -> dict[str, set[str]]:
    """``{module: modules of biobench it imports at module level}``."""
    paths = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    return {
        name: {m for m in _module_level_imports(path, name) if m in paths and m != name}
        for name, path in paths.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_graph_is_read() -> None:
    graph = import_graph()
    assert "biobench.site.protocol_site" in graph["biobench.site.build"]
    assert "biobench.site.protocol_site" in graph["biobench.site.compare_pages"]
    # TYPE_CHECKING imports count.
    assert "biobench.leaderboard" in graph["biobench.site.protocol_site"]


def test_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_biobench_has_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles among biobench's modules: " + "; ".join(
        " <-> ".join(c) for c in found
    )
