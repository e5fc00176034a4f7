"""Coverage: every personal column found by the scan that no policy minimises or keeps is a
gap (fail closed); on the demo schema with the shipped policies and with hand-written ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from retention.discovery.coverage import coverage, coverage_gaps
from retention.discovery.model import ColumnVerdict
from retention.discovery.scan import scan
from retention.policy.check import bound_policies
from tests.fix_engines import EngineDB

ROOT = Path(__file__).resolve().parent.parent
MEDECINS = ["medecins.nom", "medecins.prenom", "medecins.rpps", "medecins.adeli", "medecins.tel"]
# a table of the hospital's that no policy names, in each engine's DDL
EXTERNAL = {
    "postgresql": "CREATE TABLE annuaire_externe (id serial PRIMARY KEY, nom text, tel text)",
    "mariadb": "CREATE TABLE annuaire_externe (id int AUTO_INCREMENT PRIMARY KEY, nom text, "
    "tel text) ENGINE=InnoDB",
}

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
  - {column: SCHEMA.medecins.rpps, reason: identifiant professionnel public}
"""


def test_shipped_policies_leave_only_the_doctors_uncovered(engine_demo: EngineDB) -> None:
    demo_conn, label = engine_demo.conn, engine_demo.table
    inventory = scan(demo_conn).columns
    policies = bound_policies(demo_conn, ROOT / "policies")
    assert [gap.label for gap in coverage_gaps(inventory, policies)] == list(map(label, MEDECINS))
    by_column = {c.label: c for c in coverage(inventory, policies)}
    assert "dossier-medical/destruction (purge)" in by_column[label("patients.nom")].by
    assert "contacts-patients/coordonnees (erase)" in by_column[label("patients.email")].by
    assert "journal-modifications/purge (purge)" in by_column[label("user_log.extra")].by


def test_a_table_no_policy_touches_is_a_gap(engine_demo: EngineDB, engine: str) -> None:
    demo_conn, label = engine_demo.conn, engine_demo.table
    demo_conn.execute(EXTERNAL[engine])
    demo_conn.execute(
        "INSERT INTO annuaire_externe (nom, tel) "
        "SELECT nom, tel FROM patients WHERE tel IS NOT NULL"
    )
    inventory = scan(demo_conn).columns
    gaps = coverage_gaps(inventory, bound_policies(demo_conn, ROOT / "policies"))
    assert {label("annuaire_externe.nom"), label("annuaire_externe.tel")} <= {g.label for g in gaps}
    assert "PHONE_NUMBER" in next(g for g in gaps if g.column == "tel").render()


def test_column_actions_and_kept_columns_cover(engine_demo: EngineDB, tmp_path: Path) -> None:
    demo_conn, label = engine_demo.conn, engine_demo.table
    for source in (ROOT / "policies").glob("*.yaml"):
        shutil.copy(source, tmp_path / source.name)
    text = MEDECINS_POLICY.replace("SCHEMA.", f"{engine_demo.schema}.")
    (tmp_path / "annuaire-medecins.yaml").write_text(text, encoding="utf-8")
    inventory = scan(demo_conn, tables=["medecins", "patients"]).columns
    policies = bound_policies(demo_conn, tmp_path)
    assert [gap.label for gap in coverage_gaps(inventory, policies)] == [label("medecins.adeli")]
    by_column = {c.label: c.by for c in coverage(inventory, policies)}
    assert by_column[label("medecins.tel")] == ("annuaire-medecins/coordonnees (erase)",)
    assert by_column[label("medecins.rpps")] == (
        "annuaire-medecins keeps it: identifiant professionnel public",
    )


@pytest.mark.parametrize("entity", [None, "FR_FINESS"])
def test_columns_that_are_not_personal_are_never_gaps(
    engine_demo: EngineDB, entity: str | None
) -> None:
    verdict = ColumnVerdict(engine_demo.schema, "medecins", "specialite", entity, 0.9, {})
    assert coverage_gaps([verdict], bound_policies(engine_demo.conn, ROOT / "policies")) == []
