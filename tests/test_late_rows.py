"""A row the application links to a record while the purge batch deletes it, through a link
without a foreign key (Mediboard declares none): the batch rolls back, nothing is lost.

An outside review on a live database: the application held one row of a patient's record
locked, so the purge batch (the patient already locked and re-checked) waited on it, after it
had emptied the visits; meanwhile the application committed a new visit of that patient, which
no foreign key made wait. The batch then went on: the patient, whose clock that visit restarts,
was purged, and the new visit survived him. Through the real command, on both engines.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from retention.db import connect
from retention.engines import Connection
from retention.settings import Settings
from tests.archive_helpers import key_pair
from tests.engine_helpers import cli_env
from tests.fix_engines import EngineDB
from tests.fix_mariadb import server_is_mysql

# the links in this order make the batch delete the visits first, then the notes
POLICY = """\
name: record
subject: {table: patients, key: patient_id}
related:
  follow_foreign_keys: false
  links:
    - {table: notes, column: patient_id}
    - {table: visits, column: patient_id}
dates:
  last_visit: {latest: seen, over: visits}
retain_until: last_visit + 20 years
phases:
  - name: destruction
    due: retain_until
    action: purge
"""
TABLES = (
    "CREATE TABLE patients (patient_id integer PRIMARY KEY, name varchar(40))",
    "CREATE TABLE visits (visit_id integer PRIMARY KEY, patient_id integer NOT NULL, seen date)",
    "CREATE TABLE notes (note_id integer PRIMARY KEY, patient_id integer NOT NULL, body text)",
    "CREATE INDEX visits_patient ON visits (patient_id)",
    "CREATE INDEX notes_patient ON notes (patient_id)",
    "INSERT INTO patients VALUES (1, 'x')",
    "INSERT INTO visits VALUES (10, 1, '1990-05-01')",
    "INSERT INTO notes VALUES (20, 1, 'y')",
)
# the batch's statement waiting on the application's row lock
WAITING = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND application_name LIKE 'retention%%' AND wait_event_type = 'Lock'",
    # a statement of another session on this database running for 0.3 s on three rows
    "mariadb": "SELECT count(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
    "AND DB = DATABASE() AND INFO IS NOT NULL AND TIME_MS > 300",
}
# MySQL: a lock wait on this database's rows (its PROCESSLIST fails to convert another
# session's statement text holding bytes to utf8mb3, and its INNODB_TRX did not show the
# waiting DELETE here)
MYSQL_WAITING = (
    "SELECT count(*) FROM performance_schema.data_lock_waits AS w "
    "JOIN performance_schema.data_locks AS l ON l.ENGINE_LOCK_ID = w.REQUESTING_ENGINE_LOCK_ID "
    "WHERE l.OBJECT_SCHEMA = DATABASE()"
)


def _waits(
    conn: Connection, engine: str, tool: subprocess.Popen[str], within: float = 60.0
) -> None:
    deadline = time.monotonic() + within
    query = MYSQL_WAITING if engine == "mariadb" and server_is_mysql() else WAITING[engine]
    while time.monotonic() < deadline and tool.poll() is None:
        try:
            with conn.transaction():
                row = conn.execute(query).fetchone()
        except BaseException:
            tool.kill()  # not left running into the next test
            tool.communicate()
            raise
        if row is not None and row[0]:
            return
        time.sleep(0.05)
    tool.kill()
    raise AssertionError(f"the batch never waited on the lock:\n{tool.communicate()[0]}")


def _rows(conn: Connection) -> list[tuple[str, int]]:
    counts = []
    for table in ("patients", "visits", "notes"):
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        counts.append((table, int(row[0])))
    return counts


@pytest.mark.parametrize("action", ["purge", "archive"])
def test_a_visit_committed_while_the_batch_deletes_the_record_rolls_the_batch_back(
    engine_db: EngineDB, tmp_path: Path, action: str
) -> None:
    db = engine_db
    for statement in TABLES:
        db.conn.execute(statement)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "record.yaml").write_text(POLICY.replace("purge", action), encoding="utf-8")
    (tmp_path / "archives").mkdir(mode=0o700)
    archive = {
        "RETENTION_ARCHIVE_DIR": str(tmp_path / "archives"),
        "RETENTION_ARCHIVE_RECIPIENTS": key_pair(tmp_path).recipient,
    }
    env = cli_env(
        db.url,
        policies,
        RETENTION_SCHEMA_NAME=db.tool_schema,
        RETENTION_WORKERS="1",
        RETENTION_LOCK_TIMEOUT_MS="60000",  # the batch waits for the application's lock
        **archive,
    )
    command = [sys.executable, "-m", "retention.cli.main", "run", "--yes", "--allow-large"]
    with (
        connect(Settings(), url=db.url) as holder,
        connect(Settings(), url=db.url) as application,
        connect(Settings(), url=db.url) as watcher,
    ):
        with holder.transaction():
            holder.execute("SELECT * FROM notes WHERE note_id = 20 FOR UPDATE").fetchall()
            tool = subprocess.Popen(
                [*command, "--reason", "test"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            _waits(watcher, db.engine, tool)  # the visits deleted, the notes waiting
            with application.transaction():  # a visit today: the clock starts again
                application.execute("INSERT INTO visits VALUES (11, 1, %s)", (date.today(),))
        output = tool.communicate(timeout=120)[0]
    assert tool.returncode == 0, output
    assert "Traceback" not in output
    assert "1 batch(es) skipped" in output, output
    assert _rows(db.conn) == [("patients", 1), ("visits", 2), ("notes", 1)]
    left = [p for p in (tmp_path / "archives").rglob("*") if p.is_file()]
    assert not left  # no file of the rolled-back batch
    # the next run re-checks the patient: seen today, no longer due
    again = subprocess.run(
        [*command, "--reason", "test"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert _rows(db.conn) == [("patients", 1), ("visits", 2), ("notes", 1)]
