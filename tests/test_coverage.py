"""Coverage: every personal column found by the scan that no policy minimises or keeps is a
gap (fail closed); on the demo schema with the shipped policies and with hand-written ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import TupleRow

from retention.discovery.coverage import coverage, coverage_gaps
from retention.discovery.model import ColumnVerdict
from retention.discovery.scan import scan
from retention.policy.check import bound_policies

ROOT = Path(__file__).resolve().parent.parent
MEDECINS = [
    "public.medecins.nom",
    "public.medecins.prenom",
    "public.medecins.rpps",
    "public.medecins.adeli",
    "public.medecins.tel",
]

MEDECINS_POLICY = """
name: annuaire-medecins
subject: {table: medecins, key: medecin_id}
related: {follow_foreign_keys: false}
retain_until: date '2100-01-01'
phases:
  - name: coordonnees
    due: date '2100-01-01'
    action: erase
    columns: [tel]
keep:
  - {column: nom, reason: annuaire public des praticiens}
  - {column: medecins.prenom, reason: annuaire public des praticiens}
  - {column: public.medecins.rpps, reason: identifiant professionnel public}
"""


def test_shipped_policies_leave_only_the_doctors_uncovered(
    demo_conn: psycopg.Connection[TupleRow],
) -> None:
    inventory = scan(demo_conn).columns
    policies = bound_policies(demo_conn, ROOT / "policies")
    assert [gap.label for gap in coverage_gaps(inventory, policies)] == MEDECINS
    by_column = {c.label: c for c in coverage(inventory, policies)}
    assert "dossier-medical/destruction (purge)" in by_column["public.patients.nom"].by
    assert "contacts-patients/coordonnees (erase)" in by_column["public.patients.email"].by
    assert "journal-modifications/purge (purge)" in by_column["public.user_log.extra"].by


def test_a_table_no_policy_touches_is_a_gap(demo_conn: psycopg.Connection[TupleRow]) -> None:
    demo_conn.execute("CREATE TABLE annuaire_externe (id serial PRIMARY KEY, nom text, tel text)")
    demo_conn.execute(
        "INSERT INTO annuaire_externe (nom, tel) "
        "SELECT nom, tel FROM patients WHERE tel IS NOT NULL"
    )
    inventory = scan(demo_conn).columns
    gaps = coverage_gaps(inventory, bound_policies(demo_conn, ROOT / "policies"))
    assert {"public.annuaire_externe.nom", "public.annuaire_externe.tel"} <= {g.label for g in gaps}
    assert "PHONE_NUMBER" in next(g for g in gaps if g.column == "tel").render()


def test_column_actions_and_kept_columns_cover(
    demo_conn: psycopg.Connection[TupleRow], tmp_path: Path
) -> None:
    for source in (ROOT / "policies").glob("*.yaml"):
        shutil.copy(source, tmp_path / source.name)
    (tmp_path / "annuaire-medecins.yaml").write_text(MEDECINS_POLICY, encoding="utf-8")
    inventory = scan(demo_conn, tables=["medecins", "patients"]).columns
    policies = bound_policies(demo_conn, tmp_path)
    assert [gap.label for gap in coverage_gaps(inventory, policies)] == ["public.medecins.adeli"]
    by_column = {c.label: c.by for c in coverage(inventory, policies)}
    assert by_column["public.medecins.tel"] == ("annuaire-medecins/coordonnees (erase)",)
    assert by_column["public.medecins.rpps"] == (
        "annuaire-medecins keeps it: identifiant professionnel public",
    )


@pytest.mark.parametrize("entity", [None, "FR_FINESS"])
def test_columns_that_are_not_personal_are_never_gaps(
    demo_conn: psycopg.Connection[TupleRow], entity: str | None
) -> None:
    verdict = ColumnVerdict("public", "medecins", "specialite", entity, 0.9, {})
    assert coverage_gaps([verdict], bound_policies(demo_conn, ROOT / "policies")) == []
