"""Purge and archive phases run only for a policy version enough distinct people approved."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from tests.engine_helpers import ROOT, cli, run, settings


def _cli(url: str, policies: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(url, *args, policies=policies, RETENTION_REQUIRED_APPROVALS="2")


def _patients(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM patients").fetchone()
    return int(row[0]) if row else 0


def test_purge_waits_for_two_distinct_approvals_of_the_exact_file(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    config = settings(demo_db_url, policies, required_approvals=2)
    before = _patients(demo_conn)
    report = run(demo_conn, config, only="dossier-medical")
    assert report.phases[0].not_approved is not None
    assert "NOT approved: 0/2" in report.phases[0].not_approved
    assert _patients(demo_conn) == before
    # the same person twice is one approval
    for by, role in (("Dr Martin", "médecin DIM"), ("Dr Martin", "médecin DIM")):
        assert (
            _cli(
                demo_db_url,
                policies,
                "approve",
                "--policy",
                "dossier-medical",
                "--by",
                by,
                "--role",
                role,
            ).returncode
            == 0
        )
    plan = json.loads(_cli(demo_db_url, policies, "plan", "--format", "json").stdout)
    record = next(p for p in plan["policies"] if p["name"] == "dossier-medical")
    assert record["approval"]["approved"] is False and len(record["approval"]["by"]) == 2
    approved = _cli(
        demo_db_url,
        policies,
        "approve",
        "--policy",
        "dossier-medical",
        "--by",
        "M. Durand",
        "--role",
        "directeur",
    )
    assert "approved: 2/2" in approved.stdout
    check = _cli(demo_db_url, policies, "check")
    assert "approved: 2/2 approval(s) of this version" in check.stdout
    report = run(demo_conn, config, only="dossier-medical")
    assert report.phases[0].not_approved is None and report.phases[0].acted > 0
    assert _patients(demo_conn) < before


def test_editing_the_file_withdraws_the_approval(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    for by in ("A", "B"):
        _cli(
            demo_db_url,
            policies,
            "approve",
            "--policy",
            "dossier-medical",
            "--by",
            by,
            "--role",
            "r",
        )
    path = policies / "dossier-medical.yaml"
    path.write_text(path.read_text().replace("20 years", "21 years"))
    report = run(
        demo_conn, settings(demo_db_url, policies, required_approvals=2), only="dossier-medical"
    )
    assert report.phases[0].not_approved is not None
    events = [
        r[0]
        for r in demo_conn.execute(
            "SELECT event FROM retention.audit WHERE event = 'phase_not_approved'"
        )
    ]
    assert events == ["phase_not_approved"]


def test_column_phases_need_no_approval(
    demo_conn: psycopg.Connection[Any], demo_db_url: str
) -> None:
    report = run(demo_conn, settings(demo_db_url, required_approvals=2), only="contacts-patients")
    assert report.phases[0].not_approved is None and report.phases[0].acted > 0
