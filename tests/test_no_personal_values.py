"""No personal value of the test database in any command output, log line or audit entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from tests.engine_helpers import cli
from tests.test_report_support import personal_values


def _cli(url: str, audit_log: Path, *args: str) -> str:
    result = cli(
        url,
        *args,
        timeout=180,
        RETENTION_LOG_FORMAT="json",
        RETENTION_LOG_LEVEL="DEBUG",
        RETENTION_AUDIT_LOG=str(audit_log),
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout + result.stderr


def test_outputs_logs_and_audit_hold_no_personal_value(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, tmp_path: Path
) -> None:
    values = personal_values(demo_conn)
    assert len(values) > 500
    key = str(demo_conn.execute("SELECT min(patient_id) FROM patients").fetchone()[0])  # type: ignore[index]
    log = tmp_path / "audit.jsonl"
    seen = [
        _cli(demo_db_url, log, "check"),
        _cli(demo_db_url, log, "plan"),
        _cli(demo_db_url, log, "plan", "--format", "json"),
        _cli(
            demo_db_url,
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
        _cli(demo_db_url, log, "hold", "list"),
        _cli(demo_db_url, log, "run", "--yes", "--allow-large", "--reason", "test"),
        _cli(demo_db_url, log, "hold", "release", "--policy", "dossier-medical", "--subject", key),
        _cli(demo_db_url, log, "audit", "verify"),
        _cli(demo_db_url, log, "audit", "show"),
        _cli(demo_db_url, log, "audit", "show", "--format", "json"),
        _cli(demo_db_url, log, "audit", "show", "--format", "csv"),
        _cli(demo_db_url, log, "audit", "find", "--subject", key, "--policy", "dossier-medical"),
    ]
    seen.append(log.read_text(encoding="utf-8"))
    seen += [str(r) for r in demo_conn.execute("SELECT a::text FROM retention.audit a")]
    seen += [str(r) for r in demo_conn.execute("SELECT r::text FROM retention.runs r")]
    text = "\n".join(seen)
    assert "batch" in text and "run_end" in text  # the run really happened and was logged
    assert log.stat().st_size > 0
    leaks = sorted(v for v in values if v in text)
    assert leaks == [], f"{len(leaks)} personal value(s) leaked"
