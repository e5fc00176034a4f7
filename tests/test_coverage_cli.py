"""`retention check --coverage` fails closed: exit 3 while a personal column is uncovered."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from tests.engine_helpers import ROOT, cli

KEEP = """
keep:
  - column: medecins.nom
    reason: annuaire des professionnels de santé (registre RPPS public)
  - column: medecins.prenom
    reason: annuaire des professionnels de santé (registre RPPS public)
  - column: medecins.rpps
    reason: identifiant professionnel public
  - column: medecins.adeli
    reason: identifiant professionnel public
  - column: medecins.tel
    reason: téléphone professionnel du service
"""


def _cli(url: str, policies: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(url, *args, policies=policies)


def test_coverage_gaps_exit_3_until_kept_or_covered(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    before = _cli(demo_db_url, policies, "check", "--coverage")
    assert before.returncode == 2 and "no scan is stored yet" in before.stderr
    scanned = _cli(demo_db_url, policies, "scan")
    assert scanned.returncode == 0, scanned.stderr
    gaps = _cli(demo_db_url, policies, "check", "--coverage")
    assert gaps.returncode == 3
    assert "public.medecins.rpps: FR_RPPS" in gaps.stdout
    assert "public.patients.nom" not in gaps.stdout  # covered by the medical-record purge
    run = _cli(
        demo_db_url,
        policies,
        "run",
        "--yes",
        "--allow-large",
        "--reason",
        "t",
        "--policy",
        "contacts-patients",
    )
    assert run.returncode == 0, run.stderr
    assert "coverage: 5 personal column(s) covered by no policy" in run.stdout
    assert "personal column(s) covered by no policy" in run.stderr  # and in the logs
    record = policies / "dossier-medical.yaml"
    record.write_text(record.read_text() + KEEP)
    covered = _cli(demo_db_url, policies, "check", "--coverage")
    assert covered.returncode == 0, covered.stdout + covered.stderr
    assert "every personal column of the last scan is covered" in covered.stdout
