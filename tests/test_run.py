"""`retention run` on the demo hospital: purge through every kind of link, locked re-checks,
concurrent application transactions, legal holds and safety limits."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import psycopg
import pytest

from retention.engine.progress import LogReporter
from retention.engine.safety import SafetyError
from retention.plan.compute import compute_plan
from retention.store.schema import migrate
from tests.clock_helpers import policy, statuses
from tests.engine_helpers import run, settings
from tests.test_plan_oracle import _related_rows

TODAY = date.today()


def _due(conn: psycopg.Connection[Any]) -> set[int]:
    migrate(conn)
    bound = policy(conn, "dossier-medical")
    return {k for k, s in statuses(conn, bound, TODAY).items() if s.is_due}


def _counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
    ]
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # type: ignore[index]


def test_purge_removes_every_related_row_and_nothing_else(
    demo_conn: psycopg.Connection[Any], demo_db_url: str
) -> None:
    due = _due(demo_conn)
    assert len(due) > 20
    related = _related_rows(demo_conn, due)
    before = _counts(demo_conn)
    plan = compute_plan(demo_conn, [policy(demo_conn, "dossier-medical")], TODAY)
    report = run(demo_conn, settings(demo_db_url, batch_size=25), only="dossier-medical")
    assert report.outcome == "completed"
    phase = report.phases[0]
    assert phase.acted == len(due)
    assert dict(phase.rows) == related == plan.policies[0].phases[0].rows
    after = _counts(demo_conn)
    for table, count in before.items():
        assert after[table] == count - related.get(f"public.{table}", 0), table
    # nothing of the purged patients remains, through any link
    remaining = _related_rows(demo_conn, due)
    del remaining["public.patients"]  # the oracle counts the keys it was given
    assert set(remaining.values()) == {0}
    assert demo_conn.execute(
        "SELECT count(*) FROM patients WHERE patient_id = ANY(%s)", (list(due),)
    ).fetchone() == (0,)


def test_subjects_locked_by_the_application_are_skipped_then_done(
    demo_conn: psycopg.Connection[Any], demo_db_url: str
) -> None:
    due = sorted(_due(demo_conn))
    held = due[:3]
    with psycopg.connect(demo_db_url) as app:  # a transaction of the hospital application
        app.execute("SELECT 1 FROM patients WHERE patient_id = ANY(%s) FOR KEY SHARE", (held,))
        report = run(demo_conn, settings(demo_db_url, batch_size=40), only="dossier-medical")
        assert report.phases[0].locked_elsewhere == 3
        assert report.phases[0].acted == len(due) - 3
        left = [
            r[0]
            for r in demo_conn.execute(
                "SELECT patient_id FROM patients WHERE patient_id = ANY(%s)", (due,)
            )
        ]
        assert left == held
        app.rollback()
    report = run(demo_conn, settings(demo_db_url), only="dossier-medical")
    assert report.phases[0].acted == 3


class _NewStayAtStart(LogReporter):
    """Between the plan and the first batch, the patient comes back for a new stay."""

    def __init__(self, url: str, patient: int) -> None:
        super().__init__()
        self.url, self.patient = url, patient

    def start(self, label: str, total: int) -> None:
        super().start(label, total)
        with psycopg.connect(self.url, autocommit=True) as app:
            app.execute(
                "INSERT INTO sejours (patient_id, entree, sortie, annule) "
                "VALUES (%s, now() - interval '2 days', now(), '0')",
                (self.patient,),
            )


def test_a_patient_who_came_back_after_the_plan_is_kept(
    demo_conn: psycopg.Connection[Any], demo_db_url: str
) -> None:
    due = sorted(_due(demo_conn))
    alive = [
        r[0]
        for r in demo_conn.execute(
            "SELECT patient_id FROM patients WHERE deces IS NULL AND patient_id = ANY(%s) "
            "ORDER BY patient_id",
            (due,),
        )
    ]
    back = alive[len(alive) // 2]  # (a new stay after death would not restart the clock)
    report = run(
        demo_conn,
        settings(demo_db_url),
        only="dossier-medical",
        progress=_NewStayAtStart(demo_db_url, back),
    )
    assert report.phases[0].proposed == len(due)
    assert report.phases[0].no_longer_due == 1
    assert report.phases[0].acted == len(due) - 1
    assert demo_conn.execute(
        "SELECT count(*) FROM patients WHERE patient_id = %s", (back,)
    ).fetchone() == (1,)


def test_a_legal_hold_keeps_the_subject(
    demo_conn: psycopg.Connection[Any], demo_db_url: str
) -> None:
    due = sorted(_due(demo_conn))
    demo_conn.execute(
        "INSERT INTO retention.holds (policy, subject_key, reason) "
        "VALUES ('dossier-medical', %s, 'claim 2026-17')",
        (str(due[0]),),
    )
    report = run(demo_conn, settings(demo_db_url), only="dossier-medical")
    assert report.phases[0].acted == len(due) - 1
    assert demo_conn.execute(
        "SELECT count(*) FROM sejours WHERE patient_id = %s", (due[0],)
    ).fetchone() != (0,)


def test_share_limit_refuses_before_changing_anything(
    demo_conn: psycopg.Connection[Any], demo_db_url: str
) -> None:
    before = _counts(demo_conn)
    with pytest.raises(SafetyError, match="maximum share of 10%"):
        run(demo_conn, settings(demo_db_url), only="dossier-medical", allow_large=False)
    assert _counts(demo_conn) == before
    assert demo_conn.execute("SELECT count(*) FROM retention.runs").fetchone() == (0,)


def test_count_limit_refuses_and_says_by_how_much(
    demo_conn: psycopg.Connection[Any], demo_db_url: str
) -> None:
    due = _due(demo_conn)
    config = settings(demo_db_url, max_subjects_per_phase=10, max_share_per_phase=1.0)
    with pytest.raises(SafetyError) as caught:
        run(demo_conn, config, only="dossier-medical", allow_large=False)
    assert f"over the maximum of 10 by {len(due) - 10}" in caught.value.message
    assert caught.value.hint is not None and "--allow-large" in caught.value.hint


def test_limit_override_is_audited(demo_conn: psycopg.Connection[Any], demo_db_url: str) -> None:
    run(demo_conn, settings(demo_db_url), only="dossier-medical", allow_large=True)
    row = demo_conn.execute(
        "SELECT detail->>'reason' FROM retention.audit WHERE event = 'limit_override'"
    ).fetchone()
    assert row == ("test",)


def test_clock_skew_refuses_to_run(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = time.time
    monkeypatch.setattr("retention.engine.safety.time.time", lambda: real() + 3600)
    with pytest.raises(SafetyError, match=r"clocks? differ"):
        run(demo_conn, settings(demo_db_url), only="dossier-medical")


def test_second_run_waits_for_the_lock_then_says_who_holds_it(
    demo_conn: psycopg.Connection[Any], demo_db_url: str
) -> None:
    from retention.store import lock

    migrate(demo_conn)
    with psycopg.connect(demo_db_url, autocommit=True) as other:
        lock.acquire(other, "retention")
        with pytest.raises(lock.RunInProgressError, match="another run is in progress"):
            run(demo_conn, settings(demo_db_url), only="dossier-medical")
