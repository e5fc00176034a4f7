"""The engine seam stays closed: outside `retention/engines/`, no module imports a driver, nor
names an engine (to choose SQL by it) or writes one engine's own SQL.

Callers hold `retention.engines.Connection`, compose SQL with `retention.engines.sql` and catch
`retention.engines.errors`; what is PostgreSQL's (or MariaDB's) lives in the engine's folder.
KNOWN lists today's modules that still use a psycopg-only API, each waiting to move behind the
engine; an entry that no longer imports a driver must be removed, so the list only shrinks.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "retention"
DRIVERS = {"psycopg", "psycopg_pool", "mariadb", "pymysql", "MySQLdb"}

KNOWN: set[str] = set()  # every module outside engines/ imports no driver now

# an engine's name (or URL scheme) as a value: a caller choosing by it (`name == "mariadb"`)
ENGINE_NAMES = {"postgresql", "postgres", "mariadb", "mysql"}
# SQL only one engine understands: its catalogue, row addresses, functions, limits
ENGINE_SQL = re.compile(
    r"\bpg_(?:attribute|class|namespace|catalog|index|constraint|trigger|inherits|rewrite|"
    r"export_snapshot|(?:try_)?advisory_\w+|temp)\b|\b(?:ctid|tableoid|regclass|DISTINCT ON)\b"
    r"|\b(?:JSON_CONTAINS|JSON_TABLE|GET_LOCK|RELEASE_LOCK|max_statement_time|"
    r"max_execution_time|LAST_INSERT_ID|percentile_disc)\b",
    re.IGNORECASE,
)
# modules that may name an engine, and why; the list only shrinks (checked below)
NAMING: dict[str, str] = {
    # the demo builds its hospital with each engine's own DDL and loader (`retention demo` is a
    # showcase, not the tool: the tool's behaviour never depends on it) ...
    "demo/schema.py": "picks the demo hospital's DDL and loader module by engine",
    "demo/mariadb.py": "the demo hospital's MariaDB DDL and loader",
    # ... and starts an embedded PostgreSQL when no URL is configured (`make demo`)
    "cli/demo.py": "embedded PostgreSQL by default; --mediboard's shapes exist on MariaDB only",
}


def _drivers(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & DRIVERS


def _importers() -> set[str]:
    return {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).parts[0] != "engines" and _drivers(path)
    }


def test_no_module_outside_the_engines_imports_a_driver() -> None:
    new = sorted(_importers() - KNOWN)
    assert not new, f"import the driver only under retention/engines/ (seam): {new}"


def test_the_list_of_modules_still_to_move_only_shrinks() -> None:
    stale = sorted(KNOWN - _importers())
    assert not stale, f"no longer import a driver, remove from KNOWN: {stale}"


def _code_strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """The string constants of the code, docstrings left out (prose may name an engine)."""
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.lineno, node.value


def _engine_folders() -> set[str]:
    return {p.name for p in (PACKAGE / "engines").iterdir() if (p / "__init__.py").exists()}


def _namings(path: Path, folders: set[str]) -> list[str]:
    """Where the module names an engine: an engine's name as a value, an engine's own SQL, an
    import from an engine's folder."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [
        f"{line}: {text[:60]!r}"
        for line, text in _code_strings(tree)
        if text.strip().lower() in ENGINE_NAMES or ENGINE_SQL.search(text)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[:2] == ["retention", "engines"] and len(parts) > 2 and parts[2] in folders:
                found.append(f"{node.lineno}: imports {module}")
    return found


def _naming_modules() -> dict[str, list[str]]:
    folders = _engine_folders()
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(PACKAGE))
        if path.relative_to(PACKAGE).parts[0] != "engines" and (where := _namings(path, folders)):
            found[name] = where
    return found


def test_no_module_outside_the_engines_names_an_engine() -> None:
    """What differs between engines is behind the seam (a Dialect, Catalogue or Session method,
    or a capability): a caller never compares an engine's name, writes one engine's SQL, or
    imports from an engine's folder."""
    named = {m: w for m, w in _naming_modules().items() if m not in NAMING}
    assert not named, f"choose by a capability or an engine method instead: {named}"


def test_the_modules_allowed_to_name_an_engine_only_shrink() -> None:
    stale = sorted(set(NAMING) - set(_naming_modules()))
    assert not stale, f"no longer name an engine, remove from NAMING: {stale}"


def test_the_check_sees_a_caller_choosing_by_engine_name(tmp_path: Path) -> None:
    """The scan catches the forms this seam replaced (issue 17): a name compared, an engine's
    catalogue queried, an engine's module imported; prose in a docstring is not a naming."""
    module = tmp_path / "caller.py"
    module.write_text(
        '"""Works on PostgreSQL and MariaDB."""\n'
        "from retention.engines.postgresql import raw\n"
        "def f(engine):\n"
        '    """MariaDB keeps JSON."""\n'
        '    if engine.name == "mariadb":\n'
        '        return "SELECT reltuples FROM pg_class"\n',
        encoding="utf-8",
    )
    found = _namings(module, _engine_folders())
    assert [f.split(":")[0] for f in found] == ["5", "6", "2"], found
