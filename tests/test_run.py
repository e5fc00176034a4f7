"""`retention run` on the demo hospital: purge through every kind of link, locked re-checks,
concurrent application transactions, legal holds and safety limits (on every engine)."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import pytest

from retention.db import connect
from retention.demo.tables import TABLES
from retention.engine.progress import LogReporter
from retention.engine.safety import SafetyError
from retention.engines import Connection, sql
from retention.plan.compute import compute_plan
from retention.settings import Settings
from retention.store.schema import migrate
from tests.clock_helpers import policy, statuses
from tests.engine_helpers import cli_env, run
from tests.fix_engines import EngineDB, json_value
from tests.test_plan_oracle import _related_rows

TODAY = date.today()
# the application's shared lock on rows it reads (PostgreSQL's weakest one that a purge's
# FOR UPDATE waits for; MariaDB's only one)
SHARE_LOCK = {"postgresql": "FOR KEY SHARE", "mariadb": "LOCK IN SHARE MODE"}


def _due(db: EngineDB) -> set[int]:
    migrate(db.conn, db.tool_schema)
    bound = policy(db.conn, "dossier-medical")
    found = statuses(db.conn, bound, TODAY, tool_schema=db.tool_schema)
    return {k for k, s in found.items() if s.is_due}


def table_counts(conn: Connection) -> dict[str, int]:
    """Rows of each demo table."""
    counts = {}
    for table in TABLES:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        counts[table] = int(row.fetchone()[0])
    return counts


def _counts(db: EngineDB) -> dict[str, int]:
    return table_counts(db.conn)


def _among(keys: Sequence[int]) -> sql.Composable:
    """`patient_id IN (...)`, one parameter per key."""
    return sql.SQL("patient_id IN ({})").format(sql.SQL(", ").join(sql.SQL("%s") for _ in keys))


def _patients(db: EngineDB, keys: Sequence[int]) -> list[int]:
    query = sql.SQL("SELECT patient_id FROM patients WHERE {} ORDER BY patient_id")
    return [int(r[0]) for r in db.conn.execute(query.format(_among(keys)), tuple(keys))]


def test_purge_removes_every_related_row_and_nothing_else(engine_demo: EngineDB) -> None:
    db, conn = engine_demo, engine_demo.conn
    due = _due(db)
    assert len(due) > 20
    related = _related_rows(db, due)
    before = _counts(db)
    plan = compute_plan(conn, [policy(conn, "dossier-medical")], TODAY, schema=db.tool_schema)
    report = run(conn, db.settings(batch_size=25), only="dossier-medical")
    assert report.outcome == "completed"
    phase = report.phases[0]
    assert phase.acted == len(due)
    assert dict(phase.rows) == related == plan.policies[0].phases[0].rows
    after = _counts(db)
    for table, count in before.items():
        assert after[table] == count - related.get(db.table(table), 0), table
    # nothing of the purged patients remains, through any link
    remaining = _related_rows(db, due)
    del remaining[db.table("patients")]  # the oracle counts the keys it was given
    assert set(remaining.values()) == {0}
    assert _patients(db, sorted(due)) == []


def test_subjects_locked_by_the_application_are_skipped_then_done(
    engine_demo: EngineDB, engine: str
) -> None:
    db = engine_demo
    due = sorted(_due(db))
    held = due[:3]
    # a transaction of the hospital application
    with connect(Settings(), url=db.url) as app, app.transaction(force_rollback=True):
        app.execute(
            sql.SQL("SELECT 1 FROM patients WHERE {} " + SHARE_LOCK[engine]).format(_among(held)),
            tuple(held),
        ).fetchall()
        report = run(db.conn, db.settings(batch_size=40), only="dossier-medical")
        assert report.phases[0].locked_elsewhere == 3
        assert report.phases[0].acted == len(due) - 3
        assert _patients(db, due) == held
    report = run(db.conn, db.settings(), only="dossier-medical")
    assert report.phases[0].acted == 3


class _NewStayAtStart(LogReporter):
    """Between the plan and the first batch, the patient comes back for a new stay."""

    def __init__(self, url: str, patient: int) -> None:
        super().__init__()
        self.url, self.patient = url, patient

    def start(self, label: str, total: int) -> None:
        super().start(label, total)
        now = datetime.now().replace(microsecond=0)
        with connect(Settings(), url=self.url) as app:
            app.execute(
                "INSERT INTO sejours (patient_id, entree, sortie, annule) VALUES (%s, %s, %s, '0')",
                (self.patient, now - timedelta(days=2), now),
            )


def test_a_patient_who_came_back_after_the_plan_is_kept(engine_demo: EngineDB) -> None:
    db = engine_demo
    due = sorted(_due(db))
    query = sql.SQL("SELECT patient_id FROM patients WHERE deces IS NULL AND {} ORDER BY 1")
    alive = [int(r[0]) for r in db.conn.execute(query.format(_among(due)), tuple(due))]
    back = alive[len(alive) // 2]  # (a new stay after death would not restart the clock)
    report = run(
        db.conn,
        db.settings(),
        only="dossier-medical",
        progress=_NewStayAtStart(db.url, back),
    )
    assert report.phases[0].proposed == len(due)
    assert report.phases[0].no_longer_due == 1
    assert report.phases[0].acted == len(due) - 1
    assert _patients(db, [back]) == [back]


def test_a_legal_hold_keeps_the_subject(engine_demo: EngineDB) -> None:
    db = engine_demo
    due = sorted(_due(db))
    db.conn.execute(
        sql.SQL("INSERT INTO {} (policy, subject_key, reason) VALUES (%s, %s, %s)").format(
            db.tool("holds")
        ),
        ("dossier-medical", str(due[0]), "claim 2026-17"),
    )
    report = run(db.conn, db.settings(), only="dossier-medical")
    assert report.phases[0].acted == len(due) - 1
    assert db.count("sejours", "patient_id = %s", (due[0],)) != 0


def test_share_limit_refuses_before_changing_anything(engine_demo: EngineDB) -> None:
    db = engine_demo
    before = _counts(db)
    with pytest.raises(SafetyError, match="maximum share of 10%"):
        run(db.conn, db.settings(), only="dossier-medical", allow_large=False)
    assert _counts(db) == before
    runs = db.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(db.tool("runs"))).fetchone()
    assert runs == (0,)
    # the refusal is in the trail, with the limit and the counts (no subject, no value)
    rows = db.conn.execute(
        sql.SQL("SELECT event, outcome, subjects, detail FROM {}").format(db.tool("audit"))
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [("limits_refused", "refused", 0)]
    (phase,) = json_value(rows[0][3])["phases"]
    assert phase.startswith("dossier-medical/destruction: ") and "maximum share of 10%" in phase


def test_a_run_refused_from_the_command_line_is_audited_too(engine_demo: EngineDB) -> None:
    """`retention run --yes` (the shipped timer's command) holds the limits when it shows the
    plan, before the runner: the refusal is in the trail there too."""
    db = engine_demo
    assert db.cli("init").returncode == 0
    done = db.cli("run", "--yes", "--policy", "dossier-medical")
    assert done.returncode == 5, done.stderr
    assert "maximum share of 10%" in done.stderr
    rows = db.conn.execute(
        sql.SQL("SELECT event, outcome FROM {}").format(db.tool("audit"))
    ).fetchall()
    assert [(str(e), str(o)) for e, o in rows] == [("limits_refused", "refused")]


def test_count_limit_refuses_and_says_by_how_much(engine_demo: EngineDB) -> None:
    db = engine_demo
    due = _due(db)
    config = db.settings(max_subjects_per_phase=10, max_share_per_phase=1.0)
    with pytest.raises(SafetyError) as caught:
        run(db.conn, config, only="dossier-medical", allow_large=False)
    assert f"over the maximum of 10 by {len(due) - 10}" in caught.value.message
    assert caught.value.hint is not None and "--allow-large" in caught.value.hint


def test_limit_override_is_audited(engine_demo: EngineDB) -> None:
    db = engine_demo
    run(db.conn, db.settings(), only="dossier-medical", allow_large=True)
    rows = db.conn.execute(
        sql.SQL("SELECT detail FROM {} WHERE event = 'limit_override'").format(db.tool("audit"))
    ).fetchall()
    assert [json_value(r[0])["reason"] for r in rows] == ["test"]


def test_clock_skew_refuses_to_run(engine_demo: EngineDB, monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.time
    monkeypatch.setattr("retention.engine.safety.time.time", lambda: real() + 3600)
    with pytest.raises(SafetyError, match=r"clocks? differ"):
        run(engine_demo.conn, engine_demo.settings(), only="dossier-medical")


def test_second_run_waits_for_the_lock_then_says_who_holds_it(engine_demo: EngineDB) -> None:
    from retention.store import lock

    db = engine_demo
    migrate(db.conn, db.tool_schema)
    with connect(Settings(), url=db.url) as other:
        lock.acquire(other, db.tool_schema)
        with pytest.raises(lock.RunInProgressError, match="another run is in progress"):
            run(db.conn, db.settings(), only="dossier-medical")


def _lines_until(process: subprocess.Popen[str], wanted: str, within: float) -> list[str]:
    """The lines of the process's stderr up to the first that holds `wanted` (the process
    is killed and the test fails when none comes within `within` seconds)."""
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], 1.0)
        line = process.stderr.readline() if ready else ""
        lines.append(line)
        if wanted in line:
            return lines
        if ready and not line:  # the end of its output: it exited
            break
    process.kill()
    raise AssertionError(f"no {wanted!r} from the process:\n{''.join(lines)}")


def test_the_holder_of_the_run_lock_is_named_with_the_zone_of_its_start(
    engine_db: EngineDB,
) -> None:
    """A review: on MariaDB the message read "since 2026-12-07 13:42:59 " (a DATETIME in UTC
    read without a zone, the zone left blank); each engine now names its zone."""
    from retention.store import lock

    db = engine_db
    migrate(db.conn, db.tool_schema)
    db.conn.execute(
        sql.SQL(
            "INSERT INTO {} (run_id, command, host, os_user, pid) VALUES (%s, %s, %s, %s, %s)"
        ).format(db.tool("runs")),
        ("0b0e1d3a-3c1c-4a8e-9d55-2f0a5e7a9c11", "run", "host-a", "dba", 4242),
    )
    holder = lock._holder(db.conn, db.tool_schema)
    assert re.fullmatch(r"pid 4242 on host-a, since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+", holder)


def test_a_stop_while_waiting_for_the_lock_ends_the_wait_and_runs_nothing(
    engine_demo: EngineDB,
) -> None:
    """An outside review: with `lock_wait_seconds`, SIGTERM was ignored until the other run
    ended; then the run started, recorded itself interrupted and exited 0. Now the wait ends
    at the signal, nothing runs, and the exit code says so (130), through the real command."""
    from retention.store import lock

    db = engine_demo
    migrate(db.conn, db.tool_schema)
    runs = sql.SQL("SELECT count(*) FROM {}").format(db.tool("runs"))
    before = db.conn.execute(runs).fetchone()
    env = cli_env(db.url, RETENTION_SCHEMA_NAME=db.tool_schema, RETENTION_LOCK_WAIT_SECONDS="600")
    command = [sys.executable, "-m", "retention.cli.main", "run", "--yes", "--allow-large"]
    with connect(Settings(), url=db.url) as other:
        lock.acquire(other, db.tool_schema)
        process = subprocess.Popen(
            [*command, "--reason", "test"], env=env, stderr=subprocess.PIPE, text=True
        )
        lines = _lines_until(process, "waiting up to 600 s for it to finish", within=120)
        process.send_signal(signal.SIGTERM)
        rest = process.communicate(timeout=120)[1]  # not the 600 s of the wait
    assert process.returncode == 130, "".join(lines) + rest
    assert "stopped while waiting for another run to finish: nothing was changed" in rest
    assert "Traceback" not in rest
    assert db.conn.execute(runs).fetchone() == before  # no run was recorded
