"""MySQL 8's paths, run on MariaDB with MySQL's capabilities forced (no MySQL server here).

A MySQL server's connection gets MySQL's capabilities (engines/mariadb/flavour.py); the paths
they choose are valid MariaDB SQL too, so these tests force them on the MariaDB engine, as
tests/test_archive_mariadb.py forces the archive's path without `DELETE ... RETURNING`:

- the flavour is read from the server's own answer (`VERSION()`, `@@version_comment`);
- the plan is the same whichever capabilities choose its statements;
- a run's sessions never name one TEMPORARY table twice in a statement (MySQL error 1137
  "Can't reopen table"), read from the server's general query log.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from retention.cli.main import main
from retention.db import connect
from retention.engines import engine_of, sql
from retention.engines.mariadb import ENGINE
from retention.engines.mariadb.flavour import MYSQL_CAPABILITIES, parse
from retention.engines.mariadb.session import database_url
from retention.errors import DatabaseError
from retention.plan.compute import compute_plan
from retention.plan.model import Plan
from retention.policy.check import bound_policies
from retention.settings import Settings
from tests import test_run_mariadb as run_mariadb
from tests.engine_helpers import cli_env
from tests.test_run_mariadb import (
    RUN,
    TODAY,
    _drop,
    _hospital,
    _policies,
    general_log,
)

maria = run_mariadb.maria  # the hospital and the tool's database, as that test builds them

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def mysql_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MariaDB engine chooses its statements as on a MySQL 8 server."""
    monkeypatch.setattr(type(ENGINE), "capabilities", MYSQL_CAPABILITIES)


@pytest.fixture(scope="module")
def hospital(mariadb_admin_url: str) -> Iterator[str]:
    name = f"rt_mysqlp{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    _drop(mariadb_admin_url, name)
    with connect(Settings(), url=mariadb_admin_url) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = database_url(mariadb_admin_url, name)
    try:
        with connect(Settings(), url=url) as conn:
            _hospital(conn)
        yield url
    finally:
        _drop(mariadb_admin_url, name)


def test_the_flavour_is_read_from_the_servers_answer(mariadb_admin_url: str) -> None:
    with connect(Settings(), url=mariadb_admin_url) as conn:
        assert conn.flavour.server == "mariadb"  # type: ignore[attr-defined]
        assert engine_of(conn).capabilities.delete_returning
    mysql = parse("8.0.36", "MySQL Community Server - GPL")
    assert (mysql.server, mysql.version) == ("mysql", (8, 0, 36))
    assert not mysql.capabilities.reopen_temporary_table
    assert not mysql.capabilities.delete_returning
    assert mysql.statement_time(2500) == {"max_execution_time": 2500}
    own = parse("10.11.19-MariaDB-0+deb12u1", "Debian 12")
    assert own.capabilities.reopen_temporary_table
    assert own.statement_time(2500) == {"max_statement_time": 2.5}
    with pytest.raises(DatabaseError, match=r"MySQL 5\.7\.44: retention needs MySQL 8\.0"):
        parse("5.7.44-log", "MySQL Community Server (GPL)")


def _plan(url: str) -> Plan:
    with connect(Settings(), url=url) as conn:
        policies = bound_policies(conn, ROOT / "policies", tool_schema="retention")
        return compute_plan(conn, policies, TODAY)


def test_the_plan_is_the_same_with_mysqls_capabilities(
    hospital: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _plan(hospital)
    monkeypatch.setattr(type(ENGINE), "capabilities", MYSQL_CAPABILITIES)
    assert _plan(hospital) == own
    assert any(phase.due_subjects and phase.rows for p in own.policies for phase in p.phases)


_CREATED = re.compile(r"CREATE TEMPORARY TABLE (?:IF NOT EXISTS )?`([^`]+)`", re.IGNORECASE)


def reopened(statements: list[str]) -> list[tuple[str, str]]:
    """(table, statement) for every statement naming a temporary table of the session twice
    (by its quoted name: the engine quotes every identifier)."""
    names = {m for text in statements for m in _CREATED.findall(text)}
    return [
        (name, text[:300])
        for text in statements
        for name in sorted(names)
        if text.count(f"`{name}`") > 1
    ]


def test_a_run_with_mysqls_capabilities_opens_each_temporary_table_once_per_statement(
    maria: tuple[str, str],
    mariadb_admin_url: str,
    mysql_capabilities: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A whole run in this process (plan, batches, exposure snapshot); its sessions (those
    connected to the hospital's database), as the server's general query log saw them: no
    statement names one of their temporary tables twice."""
    url, tool = maria
    for name in [n for n in os.environ if n.startswith("RETENTION_")]:
        monkeypatch.delenv(name)
    env = cli_env(url, _policies(tmp_path / "policies"), RETENTION_SCHEMA_NAME=tool)
    for name, value in env.items():
        if name.startswith("RETENTION_"):
            monkeypatch.setenv(name, value)
    code, logged = general_log(mariadb_admin_url, lambda: main(list(RUN)))
    assert code == 0
    database = url.rsplit("/", 1)[1]
    threads = {t for t, kind, text in logged if kind == "Connect" and f" on {database} " in text}
    statements = [text for t, kind, text in logged if t in threads and kind != "Connect"]
    assert any(_CREATED.search(text) for text in statements), "the run made no temporary table"
    assert not reopened(statements)


def test_the_check_sees_a_temporary_table_named_twice() -> None:
    statements = [
        "CREATE TEMPORARY TABLE `retention_a` (k int)",
        "SELECT (SELECT count(*) FROM `retention_a`), (SELECT count(*) FROM `retention_a` WHERE k)",
        "SELECT count(*) FROM `retention_a`",
    ]
    assert [name for name, _ in reopened(statements)] == ["retention_a"]
