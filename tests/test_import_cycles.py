"""Imports between the packages of `retention/` go one way: no new cycle, nor between files.

Every `import` and `from ... import` of a module of `retention/` (at the top of a file, inside a
function, or under `if TYPE_CHECKING:`) is an edge from its package to the imported one (a
top-level module such as `retention/settings.py` is a package of its own). An edge that lies on
a cycle (both ends in one strongly connected component) fails this test unless it is one of
today's, listed in KNOWN_CYCLES; an entry that no longer lies on a cycle must be removed from the
list, so that it only shrinks. The same edges between files (`from retention.cli import archive`
imports cli/archive.py) must lie on no cycle at all.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "retention"

# Package edges that lie on a cycle and are tolerated until broken, with the imports that make
# them. None is left: imports go one way, settings/errors -> engines -> catalog, store ->
# policy -> rows (the SQL the plan, actions, archives and report share) -> plan -> actions ->
# engine -> service -> daemon -> cli, with archive (called by the archive action) and report
# (by the service, after a run) beside, above plan. The list may only shrink: keep it empty.
KNOWN_CYCLES: set[tuple[str, str]] = set()


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    """`retention.policy.bind` -> `policy`; `retention.settings` -> `settings`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _modules() -> dict[str, Path]:
    return {_module(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, modules: Iterable[str]) -> Iterator[str]:
    """The modules of `retention` that the file imports (`from retention.cli import archive`:
    retention.cli.archive; `from retention.cli.main import main`: retention.cli.main)."""
    module = _module(path).split(".")
    here = module if path.name == "__init__.py" else module[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1] if node.level else [])
            base = ".".join(filter(None, [base, node.module]))
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        yield from (n for n in names if n.startswith("retention."))


def _file_edges() -> set[tuple[str, str]]:
    """(module, imported module), between two files of `retention/`; with the command modules
    that `retention.cli.main` imports by name (importlib: only the command given)."""
    from retention.cli.main import _COMMANDS

    modules = _modules()
    static = {
        (source, target)
        for source, path in modules.items()
        for target in _imports(path, modules)
        if target != source
    }
    return static | {("retention.cli.main", f"retention.cli.{m}") for m, _ in _COMMANDS.values()}


def _edges() -> dict[tuple[str, str], set[str]]:
    """(package, imported package) -> the imports that make the edge."""
    edges: dict[tuple[str, str], set[str]] = {}
    for source, target in _file_edges():
        edge = (_package(source), _package(target))
        if edge[0] != edge[1]:
            edges.setdefault(edge, set()).add(f"{source} -> {target}")
    return edges


def _components(nodes: set[str], edges: set[tuple[str, str]]) -> list[set[str]]:
    """Strongly connected components (Tarjan)."""
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        successors[a].append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in successors[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return components


def _on_cycles(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    nodes = {n for edge in edges for n in edge}
    where = {n: i for i, c in enumerate(_components(nodes, edges)) for n in c}
    return {(a, b) for a, b in edges if where[a] == where[b]}


def test_the_cycle_finder_finds_a_cycle_and_only_its_edges() -> None:
    edges = {("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")}
    assert _on_cycles(edges) == {("a", "b"), ("b", "c"), ("c", "a")}
    assert _on_cycles({("a", "b"), ("b", "c")}) == set()


def test_no_new_import_cycle_between_packages() -> None:
    edges = _edges()
    assert ("cli", "policy") in edges  # the imports are read
    cycles = _on_cycles(set(edges))
    new = {edge: sorted(edges[edge]) for edge in sorted(cycles - KNOWN_CYCLES)}
    assert new == {}, "imports that close a cycle between packages (import downward instead)"
    stale = sorted(KNOWN_CYCLES - cycles)
    assert stale == [], "no longer on a cycle: remove from KNOWN_CYCLES"


def test_no_import_cycle_between_files() -> None:
    edges = _file_edges()
    assert (
        "retention.actions.purge",
        "retention.rows.records",
    ) in edges  # `from package import module`
    cycles = _on_cycles(edges)
    assert sorted(cycles) == [], (
        "imports that close a cycle between files (import downward instead)"
    )
