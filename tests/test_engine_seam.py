"""The engine seam stays closed: outside `retention/engines/`, no module imports a driver.

Callers hold `retention.engines.Connection`, compose SQL with `retention.engines.sql` and catch
`retention.engines.errors`; what is PostgreSQL's (or MariaDB's) lives in the engine's folder.
KNOWN lists today's modules that still use a psycopg-only API, each waiting to move behind the
engine; an entry that no longer imports a driver must be removed, so the list only shrinks.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from retention.engines.mariadb import ENGINE as MARIADB
from retention.engines.pending import NotYetSupportedError

PACKAGE = Path(__file__).resolve().parent.parent / "retention"
DRIVERS = {"psycopg", "psycopg_pool", "mariadb", "pymysql", "MySQLdb"}

KNOWN: set[str] = set()  # every module outside engines/ imports no driver now


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


def test_a_concern_an_engine_does_not_implement_yet_is_a_clear_error() -> None:
    """MariaDB's pending concerns refuse, naming them, before any SQL is sent."""
    with pytest.raises(NotYetSupportedError, match=r"snapshots\.export is not supported on"):
        MARIADB.snapshots.export(None)  # type: ignore[arg-type]
    with pytest.raises(NotYetSupportedError, match=r"bulk\.copy_between is not supported on"):
        MARIADB.bulk.copy_between(None, None, None)  # type: ignore[arg-type]
