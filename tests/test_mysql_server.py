"""What a MySQL server does that MariaDB does not, and the answer (MariaDB runs them too).

MySQL enforcing GTID consistency (`enforce_gtid_consistency = ON`, as Debian's MySQL ships and
replicated servers run) refuses a change to a MyISAM table in a transaction that also changes an
InnoDB table (error 1785). A batch changes its tables without transactions aside, on a
connection of its own in autocommit (retention.actions.base.Aside), so such a server accepts
it: `check` binds the phase, and the tests' MySQL server enforces GTID consistency, so that
every MyISAM test run on it (tests/test_intents_mariadb.py, tests/test_run_mariadb.py) proves
it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from retention.db import connect
from retention.engines import Connection, engine_of
from retention.policy.check import check_policies
from retention.settings import Settings
from tests.fix_mariadb import server_is_mysql

SCHEMA = (
    "CREATE TABLE patients (patient_id int unsigned NOT NULL PRIMARY KEY, sortie date) "
    "ENGINE=InnoDB",
    "CREATE TABLE sejour (sejour_id int unsigned NOT NULL PRIMARY KEY, "
    "patient_id int unsigned NOT NULL, KEY (patient_id)) ENGINE=MyISAM",
)
POLICY = """\
name: p
subject: {table: patients, key: patient_id}
related:
  follow_foreign_keys: false
  links:
    - {table: sejour, column: patient_id}
dates:
  sortie: {column: sortie}
retain_until: sortie + 20 years
phases:
  - name: destruction
    due: retain_until
    action: purge
    accept_non_transactional: [sejour]
"""


def _check(conn: Connection, tmp_path: Path) -> list[tuple[str, str, str | None]]:
    for statement in SCHEMA:
        conn.execute(statement)
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "p.yaml").write_text(POLICY, encoding="utf-8")
    return [(p.severity, p.message, p.hint) for p in check_policies(conn, folder).problems]


def test_an_accepted_myisam_table_binds_whatever_the_servers_gtid_setting(
    mariadb_conn: Connection, tmp_path: Path
) -> None:
    assert [s for s, _, _ in _check(mariadb_conn, tmp_path) if s == "error"] == []


def test_the_tests_mysql_server_enforces_gtid_consistency(mariadb_conn: Connection) -> None:
    """The MyISAM tests run on MySQL under the setting that refuses mixed transactions."""
    if not server_is_mysql():
        pytest.skip("MariaDB has no GTID consistency to enforce")
    row = mariadb_conn.execute(
        "SELECT @@GLOBAL.enforce_gtid_consistency, @@GLOBAL.gtid_mode, @@GLOBAL.log_bin"
    ).fetchone()
    assert row is not None and [str(v).upper() for v in row] == ["ON", "ON", "1"]


def test_the_run_locks_holder_is_named_while_a_statement_holds_bytes(
    mariadb_url: str, mariadb_conn: Connection
) -> None:
    """MySQL fails any read of its PROCESSLIST while a session's statement text holds bytes that
    utf8mb3 cannot hold (a batch's parameters, written into the text): the holder of the run
    lock is still found, and its host (performance_schema.threads there)."""
    engine = engine_of(mariadb_conn)
    with (
        connect(Settings(), url=mariadb_url) as holder,
        connect(Settings(), url=mariadb_url) as busy,
    ):
        assert engine.locks.try_run_lock(holder)
        sleeping = threading.Thread(
            target=lambda: busy.execute(
                "SELECT SLEEP(2) WHERE %s IS NOT NULL", (b"\xff\xfe",)
            ).fetchall()
        )
        sleeping.start()
        try:
            time.sleep(0.5)
            found = engine.locks.run_lock_holder(mariadb_conn)
        finally:
            sleeping.join()
        assert found is not None
        row = holder.execute("SELECT CONNECTION_ID()").fetchone()
        assert row is not None and found.session_id == int(row[0])
        assert found.host is not None
