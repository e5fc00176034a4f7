"""No personal value of the test database in any command output, log line or audit entry."""

from __future__ import annotations

from pathlib import Path

from retention.engines import sql
from tests.fix_engines import EngineDB
from tests.test_report_support import personal_values


def _cli(db: EngineDB, audit_log: Path, *args: str) -> str:
    result = db.cli(
        *args,
        timeout=180,
        RETENTION_LOG_FORMAT="json",
        RETENTION_LOG_LEVEL="DEBUG",
        RETENTION_AUDIT_LOG=str(audit_log),
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout + result.stderr


def _as_text(db: EngineDB, table: str) -> list[str]:
    """Every row of one of the tool's tables, each value as text."""
    rows = db.conn.execute(sql.SQL("SELECT * FROM {}").format(db.tool(table))).fetchall()
    return [" | ".join(str(value) for value in row) for row in rows]


def test_outputs_logs_and_audit_hold_no_personal_value(
    engine_demo: EngineDB, tmp_path: Path
) -> None:
    demo_conn, db = engine_demo.conn, engine_demo
    values = personal_values(demo_conn)
    assert len(values) > 500
    key = str(demo_conn.execute("SELECT min(patient_id) FROM patients").fetchone()[0])
    log = tmp_path / "audit.jsonl"
    seen = [
        _cli(db, log, "check"),
        _cli(db, log, "plan"),
        _cli(db, log, "plan", "--format", "json"),
        _cli(
            db,
            log,
            "hold",
            "add",
            "--policy",
            "dossier-medical",
            "--subject",
            key,
            "--reason",
            "case 2026-118",
        ),
        _cli(db, log, "hold", "list"),
        _cli(db, log, "run", "--yes", "--allow-large", "--reason", "test"),
        _cli(db, log, "hold", "release", "--policy", "dossier-medical", "--subject", key),
        _cli(db, log, "audit", "verify"),
        _cli(db, log, "audit", "show"),
        _cli(db, log, "audit", "show", "--format", "json"),
        _cli(db, log, "audit", "show", "--format", "csv"),
        _cli(db, log, "audit", "find", "--subject", key, "--policy", "dossier-medical"),
    ]
    seen.append(log.read_text(encoding="utf-8"))
    seen += _as_text(engine_demo, "audit") + _as_text(engine_demo, "runs")
    text = "\n".join(seen)
    assert "batch" in text and "run_end" in text  # the run really happened and was logged
    assert log.stat().st_size > 0
    leaks = sorted(v for v in values if v in text)
    assert leaks == [], f"{len(leaks)} personal value(s) leaked"
