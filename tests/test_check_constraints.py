"""CHECK constraints on the columns a phase writes (the table's own, a PostgreSQL domain's): a
value the action writes may break one, and then every batch of the phase fails. `check` warns,
naming them; the run shows why (nothing changed)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.catalog.introspect import read_catalog
from retention.policy.check import check_policies
from tests.engine_helpers import run, write_policy
from tests.fix_engines import EngineDB, run_script
from tests.fix_mariadb import server_is_mysql

SCHEMA = {
    "postgresql": """
CREATE DOMAIN telephone AS varchar(20) CHECK (VALUE ~ '^0[0-9]{9}$');
CREATE TABLE patients (id integer PRIMARY KEY, nom varchar(40), tel telephone,
    cp varchar(5) CONSTRAINT cp_format CHECK (cp ~ '^[0-9]{5}$'),
    CONSTRAINT nom_court CHECK (char_length(nom) < 30));
CREATE TABLE sejours (id integer PRIMARY KEY, patient_id integer NOT NULL REFERENCES patients,
    sortie date)
""",
    "mariadb": """
CREATE TABLE patients (id integer PRIMARY KEY, nom varchar(40),
    tel varchar(20) CHECK (tel REGEXP '^0[0-9]{9}$'),
    cp varchar(5), CONSTRAINT cp_format CHECK (cp REGEXP '^[0-9]{5}$'),
    CONSTRAINT nom_court CHECK (char_length(nom) < 30),
    doc longtext CHECK (json_valid(doc)));
CREATE TABLE sejours (id integer PRIMARY KEY, patient_id integer NOT NULL, sortie date,
    FOREIGN KEY (patient_id) REFERENCES patients (id))
""",
}
DATA = """
INSERT INTO patients (id, nom, tel, cp) VALUES (1, 'Martin', '0612345678', '75012');
INSERT INTO sejours (id, patient_id, sortie) VALUES (10, 1, '2000-01-01')
"""
POLICY = """
name: contacts
subject: {table: patients, key: id}
dates:
  dernier_sejour: {latest: sortie, over: sejours}
retain_until: dernier_sejour + 20 years
phases:
  - name: contacts
    due: retain_until
    action: generalize
    columns:
      - {column: cp, to: department}
"""


@pytest.fixture
def hospital(engine_db: EngineDB, engine: str) -> EngineDB:
    run_script(engine_db.conn, SCHEMA[engine])
    run_script(engine_db.conn, DATA)
    return engine_db


def test_the_catalogue_names_the_checks_reading_each_column(
    hospital: EngineDB, engine: str
) -> None:
    catalog = read_catalog(hospital.conn, tool_schema=hospital.tool_schema)
    table = catalog.find("patients")
    assert table is not None
    checks = {name: column.checks for name, column in table.columns.items() if column.checks}
    # the domain's check has a name the server chose; MariaDB's column check is named after
    # its column, and its json_valid() (which makes the column JSON) is none of these
    # (MySQL names a column's check itself: `<table>_chk_<n>`)
    tel = {"postgresql": ("telephone_check",), "mariadb": ("tel",)}[engine]
    if engine == "mariadb" and server_is_mysql():
        tel = ("patients_chk_1",)
    assert checks == {"cp": ("cp_format",), "nom": ("nom_court",), "tel": tel}


def test_a_column_action_on_a_checked_column_is_a_warning_and_the_run_says_why(
    hospital: EngineDB, tmp_path: Path
) -> None:
    folder = write_policy(tmp_path / "policies", POLICY)
    result = check_policies(hospital.conn, folder)
    assert result.errors == []
    (warning,) = [w for w in result.warnings if "CHECK" in w.message]
    assert warning.message == (
        "patients.cp is read by the CHECK constraint cp_format: if one refuses what generalize "
        "writes there, every batch of the phase fails (nothing changed, tried again at each run)"
    )
    assert str(warning.location) == f"{folder / 'p.yaml'}:12:9"
    # and so it does: '75' is no 5-digit code; the batch fails, nothing changes
    report = run(hospital.conn, hospital.settings(folder), at=date(2026, 12, 6))
    assert report.phases[0].acted == 0
    assert hospital.conn.execute("SELECT cp FROM patients").fetchall() == [("75012",)]


def test_a_column_no_check_reads_gets_no_warning(hospital: EngineDB, tmp_path: Path) -> None:
    text = POLICY.replace("action: generalize", "action: erase").replace(
        "{column: cp, to: department}", "{column: sejours.sortie}"
    )
    folder = write_policy(tmp_path / "policies", text)
    result = check_policies(hospital.conn, folder)
    assert [w.message for w in result.warnings if "CHECK" in w.message] == []


def test_a_domain_over_a_domain_gives_every_check_down_the_chain(
    conn: psycopg.Connection[Any],
) -> None:
    """PostgreSQL's domains (tests/fix_db.py's connection to a database of its own)."""
    conn.execute(
        "CREATE DOMAIN d1 AS varchar(10) CHECK (VALUE <> 'x'); "
        "CREATE DOMAIN d2 AS d1 CHECK (VALUE <> 'y'); CREATE DOMAIN d3 AS d2; "
        "CREATE TABLE t (id integer PRIMARY KEY, a d3)"
    )
    table = read_catalog(conn).find("t")
    assert table is not None
    assert table.columns["a"].checks == ("d1_check", "d2_check")
    # and what the first domain says of the values, read down the chain too
    column = table.columns["a"]
    assert (column.base_type, column.kind.value, column.max_length) == (
        "character varying",
        "text",
        10,
    )


def test_a_not_null_domain_under_another_makes_the_column_not_null(
    conn: psycopg.Connection[Any],
) -> None:
    conn.execute(
        "CREATE DOMAIN n1 AS char(4) NOT NULL; CREATE DOMAIN n2 AS n1; "
        "CREATE TABLE t (id integer PRIMARY KEY, a n2, b n1, c char(4))"
    )
    table = read_catalog(conn).find("t")
    assert table is not None
    columns = table.columns
    assert [(columns[c].not_null, columns[c].max_length) for c in "abc"] == [
        (True, 4),
        (True, 4),
        (False, 4),
    ]
