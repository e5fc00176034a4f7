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
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retention.cli.main import main
from retention.db import connect
from retention.discovery.inventory import save_scan
from retention.discovery.model import ColumnVerdict, ScanResult
from retention.engines import engine_of
from retention.engines.mariadb import ENGINE
from retention.engines.mariadb.flavour import MYSQL_CAPABILITIES, parse
from retention.errors import DatabaseError
from retention.plan.compute import compute_plan
from retention.plan.model import Plan
from retention.policy.check import bound_policies
from retention.report.exposure import Exposure, compute_exposure
from retention.settings import Settings
from retention.store.holds import Person, Scope, add_hold
from retention.store.schema import migrate
from tests import test_run_mariadb as run_mariadb
from tests.engine_helpers import cli_env
from tests.test_report_support import DEMO_VERDICTS
from tests.test_run_mariadb import (
    RUN,
    TODAY,
    _policies,
    general_log,
)

maria = run_mariadb.maria  # the hospital and the tool's database, as that test builds them

ROOT = Path(__file__).resolve().parent.parent
CONTACTS = """phases:
  - name: adresse
    due: derniere_venue + 3 years
    action: erase
    columns: [adresse]
  - name: telephone
    due: derniere_venue + 3 years
    action: erase
    columns: [tel, email]
"""
SCANNED = datetime(2025, 5, 30, 8, 0, tzinfo=UTC)


@pytest.mark.mariadb_only("asserts the server is MariaDB")
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
    maria: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = maria
    own = _plan(url)
    monkeypatch.setattr(type(ENGINE), "capabilities", MYSQL_CAPABILITIES)
    assert _plan(url) == own
    assert any(phase.due_subjects and phase.rows for p in own.policies for phase in p.phases)


_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
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
    statement names one of their temporary tables twice, nor has RETURNING."""
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
    # MySQL has no RETURNING (DELETE, INSERT): the run's snapshot, intents and archives do without
    assert not [text[:200] for text in statements if _RETURNING.search(text)]


def test_the_exposure_snapshot_with_mysqls_capabilities_reads_each_temporary_table_once(
    maria: tuple[str, str],
    mariadb_admin_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """With a scan's inventory (contact data beyond minimisation, direct identifiers): the
    same figures whichever capabilities, and no statement naming a clock's table twice."""
    url, tool = maria
    database = url.rsplit("/", 1)[1]
    policies = _policies(tmp_path / "policies")
    # two minimisation phases on contact columns sharing one clock: one clock's table read for
    # both in the contact figure
    text = (policies / "identite-patients.yaml").read_text(encoding="utf-8")
    text = text[: text.index("phases:")].replace("identite-patients", "coordonnees-patients")
    (policies / "coordonnees-patients.yaml").write_text(text + CONTACTS, encoding="utf-8")
    with connect(Settings(), url=url) as conn:
        migrate(conn, tool)
        verdicts = tuple(
            ColumnVerdict(database, table, column, entity, score, {"test": True})
            for table, column, entity, score in DEMO_VERDICTS
        )
        save_scan(conn, ScanResult(SCANNED, verdicts), schema=tool, scope={"test": True})
        bound = bound_policies(conn, policies, tool_schema=tool)
        own = compute_exposure(conn, bound, TODAY, schema=tool)
    monkeypatch.setattr(type(ENGINE), "capabilities", MYSQL_CAPABILITIES)

    def exposure() -> Exposure:
        with connect(Settings(), url=url) as conn:
            return compute_exposure(conn, bound, TODAY, schema=tool)

    forced, logged = general_log(mariadb_admin_url, exposure)
    assert forced == own
    assert any(p.contact_beyond_minimisation for p in own.populations)
    threads = {t for t, kind, text in logged if kind == "Connect" and f" on {database} " in text}
    statements = [text for t, kind, text in logged if t in threads and kind != "Connect"]
    assert any(_CREATED.search(text) for text in statements)
    assert not reopened(statements)


def test_without_insert_returning_the_tools_rows_are_read_back_the_same(
    maria: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hold and a scan inserted with MySQL's capabilities (INSERT, then the row by
    LAST_INSERT_ID()) come back as with MariaDB's RETURNING, the next id each time."""
    url, tool = maria
    database = url.rsplit("/", 1)[1]
    scope = Scope(Person.of((database, "patients"), "patient_id"), "dossier-medical")
    scan = ScanResult(SCANNED, (ColumnVerdict(database, "patients", "nom", "PERSON", 0.9, {}),))
    with connect(Settings(), url=url) as conn:
        migrate(conn, tool)
        own = add_hold(conn, tool, scope, "1", "litige")
        own_scan = save_scan(conn, scan, schema=tool)
        monkeypatch.setattr(type(ENGINE), "capabilities", MYSQL_CAPABILITIES)
        forced = add_hold(conn, tool, scope, "2", "litige")
        forced_scan = save_scan(conn, scan, schema=tool)
    assert forced.hold_id == own.hold_id + 1 and forced_scan == own_scan + 1
    assert replace(forced, hold_id=own.hold_id, subject_key="1", held_since=own.held_since) == own


def test_the_check_sees_a_temporary_table_named_twice() -> None:
    statements = [
        "CREATE TEMPORARY TABLE `retention_a` (k int)",
        "SELECT (SELECT count(*) FROM `retention_a`), (SELECT count(*) FROM `retention_a` WHERE k)",
        "SELECT count(*) FROM `retention_a`",
    ]
    assert [name for name, _ in reopened(statements)] == ["retention_a"]
