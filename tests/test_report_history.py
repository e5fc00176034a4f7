"""The History section: runs and what they did, incidents, the audit chain's verification, and
policy versions with their approvals, as the audit trail records them."""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from retention.policy.check import bound_policies
from retention.report.history import read_history
from retention.store.schema import migrate
from tests.engine_helpers import ROOT, run, settings
from tests.test_report_support import AT, Prepared, prepared

__all__ = ["prepared"]


def test_runs_and_their_rows_per_policy_and_action(prepared: Prepared) -> None:
    history = prepared.report.history
    assert history.installed and history.total_runs == 1
    assert history.outcomes == {"completed": 1}
    (shown,) = history.runs
    assert shown.run_id == prepared.run.run_id and shown.outcome == "completed"
    assert shown.ended_at is not None and shown.ended_at >= shown.started_at
    done = {(p.policy, p.phase): (p.acted, dict(p.rows)) for p in prepared.run.phases if p.acted}
    assert {(w.policy, w.phase): (w.subjects, w.rows) for w in shown.work} == done
    assert {w.action for w in shown.work} == {"erase", "purge"}
    assert shown.rows == sum(sum(p.rows.values()) for p in prepared.run.phases)


def test_audit_chain_is_verified_when_the_report_is_made(prepared: Prepared) -> None:
    check = prepared.report.history.verification
    with psycopg.connect(prepared.url) as conn:
        entries = conn.execute("SELECT count(*) FROM retention.audit").fetchone()
    assert check is not None and check.intact and entries is not None
    assert check.checked == entries[0]


def test_policy_versions_carry_their_sha256_and_approvals(prepared: Prepared) -> None:
    versions = {v.policy: v for v in prepared.report.history.versions}
    assert set(versions) == {p.name for p in prepared.policies}
    for policy in prepared.policies:
        version = versions[policy.name]
        assert version.current and version.sha256 == policy.loaded.sha256
        assert [(a.by, a.role, a.problem) for a in version.approvals] == [
            ("dr.martin", "medecin-dim", None),
            ("m.durand", "directeur", None),
        ]
    assert versions["dossier-medical"].batches >= 1


def test_interruptions_errors_and_refusals_are_listed(
    demo_conn: psycopg.Connection[Any], demo_db_url: str
) -> None:
    migrate(demo_conn)
    stop = threading.Event()
    stop.set()
    interrupted = run(demo_conn, settings(demo_db_url), at=AT, stop=stop)
    demo_conn.execute(
        "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'allergies are kept by the pharmacy'; END $$"
    )
    demo_conn.execute(
        "CREATE TRIGGER refuse BEFORE DELETE ON allergies FOR EACH ROW "
        "EXECUTE FUNCTION public.refuse()"
    )
    failed = run(demo_conn, settings(demo_db_url), at=AT)
    refused = run(demo_conn, settings(demo_db_url, required_approvals=2), at=AT)
    history = read_history(demo_conn, "retention", bound_policies(demo_conn, ROOT / "policies"))
    assert [r.outcome for r in history.runs] == ["completed", "failed", "interrupted"]
    assert [r.run_id for r in history.runs] == [refused.run_id, failed.run_id, interrupted.run_id]
    events = Counter(i.event for i in history.incidents)
    assert events["run_interrupted"] == 1 and events["run_failed"] == 1
    assert events["batch_failed"] == 1 and events["phase_not_approved"] == 1  # the only one due
    batch = next(i for i in history.incidents if i.event == "batch_failed")
    assert batch.policy == "dossier-medical" and batch.phase == "destruction"
    # the server's text is not kept (a trigger's RAISE may quote the row): class and SQLSTATE
    assert batch.message == "RaiseException (SQLSTATE P0001)"
    refusal = next(i for i in history.incidents if i.event == "phase_not_approved")
    assert (refusal.policy, refusal.phase, refusal.message) == (
        "dossier-medical",
        "destruction",
        "0/2",
    )


def test_a_tampered_trail_is_reported_broken(prepared: Prepared) -> None:
    with psycopg.connect(prepared.url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("UPDATE retention.audit SET subjects = subjects + 1 WHERE seq = 3")
        try:
            history = read_history(conn, "retention", prepared.policies)
        finally:
            with conn.transaction():
                conn.execute("SET LOCAL session_replication_role = replica")
                conn.execute("UPDATE retention.audit SET subjects = subjects - 1 WHERE seq = 3")
    check = history.verification
    assert check is not None and not check.intact and check.broken_seq == 3


def test_an_edited_policy_is_a_new_version_without_approvals(
    prepared: Prepared, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", folder)
    edited = folder / "dossier-medical.yaml"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n# relu le 2025-06-02\n")
    with psycopg.connect(prepared.url, autocommit=True) as conn:
        history = read_history(conn, "retention", bound_policies(conn, folder))
    record = [v for v in history.versions if v.policy == "dossier-medical"]
    assert [v.current for v in record] == [True, False]
    assert record[0].approvals == () and len(record[1].approvals) == 2
    assert record[1].batches >= 1 and record[0].batches == 0


def test_without_the_tools_schema_history_is_empty(demo_conn: psycopg.Connection[Any]) -> None:
    history = read_history(demo_conn, "retention", bound_policies(demo_conn, ROOT / "policies"))
    assert not history.installed and history.runs == () and history.verification is None
    assert all(v.current for v in history.versions)
