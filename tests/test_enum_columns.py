"""Enum columns (a MariaDB `enum(...)`, a PostgreSQL enum type) on both engines: a filter reads
them as the text of their labels, `check` warns about a label the enum does not have, and
refuses every column action that would write a value the enum cannot hold."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.policy.check import check_policies
from tests.engine_helpers import run, settings, write_policy
from tests.fix_engines import EngineDB, run_script

SCHEMA = {
    "postgresql": """
CREATE TYPE etat AS ENUM ('actif', 'annule');
CREATE TABLE patients (id integer PRIMARY KEY, tel varchar(20), statut etat);
CREATE TABLE sejours (id integer PRIMARY KEY, patient_id integer NOT NULL REFERENCES patients,
    sortie date, statut etat)
""",
    "mariadb": """
CREATE TABLE patients (id integer PRIMARY KEY, tel varchar(20), statut enum('actif', 'annule'));
CREATE TABLE sejours (id integer PRIMARY KEY, patient_id integer NOT NULL, sortie date,
    statut enum('actif', 'annule'), FOREIGN KEY (patient_id) REFERENCES patients (id))
""",
}
# patient 1: an active stay in 2000 and a cancelled one in 2020; patient 2: an active stay in
# 2010; patient 3: a cancelled stay only (no date the filter keeps: undeterminable, kept)
DATA = """
INSERT INTO patients (id, tel, statut) VALUES (1, 't1', 'actif'), (2, 't2', 'actif'),
    (3, 't3', 'annule');
INSERT INTO sejours (id, patient_id, sortie, statut) VALUES (10, 1, '2000-01-01', 'actif'),
    (11, 1, '2020-01-01', 'annule'), (20, 2, '2010-01-01', 'actif'),
    (30, 3, '1990-01-01', 'annule')
"""
POLICY = """
name: dossiers
subject: {{table: patients, key: id}}
dates:
  dernier_sejour:
    latest: sortie
    over: sejours
    where: {where}
retain_until: dernier_sejour + 20 years
phases:
  - name: destruction
    due: retain_until
    action: purge
"""


@pytest.fixture
def hospital(engine_db: EngineDB, engine: str) -> EngineDB:
    run_script(engine_db.conn, SCHEMA[engine])
    run_script(engine_db.conn, DATA)
    return engine_db


def _ids(db: EngineDB, table: str) -> list[int]:
    return [int(r[0]) for r in db.conn.execute(f"SELECT id FROM {table} ORDER BY id").fetchall()]


@pytest.mark.parametrize("where", ["statut = 'actif'", "statut <> 'annule'", "statut in ('actif')"])
def test_a_filter_reads_an_enum_column_as_its_labels(
    hospital: EngineDB, tmp_path: Path, where: str
) -> None:
    """Without the filter patient 1's cancelled stay of 2020 would keep it until 2040; with it
    patient 1 (2000) is due in 2025, patient 2 (2010) is not, patient 3 has no stay it
    counts."""
    folder = write_policy(tmp_path / "policies", POLICY.format(where=where))
    assert check_policies(hospital.conn, folder).errors == []
    report = run(hospital.conn, hospital.settings(folder), at=date(2025, 6, 1))
    assert report.phases[0].acted == 1
    assert _ids(hospital, "patients") == [2, 3]
    assert _ids(hospital, "sejours") == [20, 30]


def test_a_label_the_enum_does_not_have_is_a_warning(
    hospital: EngineDB, engine: str, tmp_path: Path
) -> None:
    """'Annule' is no label on PostgreSQL (exact); MariaDB's case-insensitive collation takes
    it for 'annule', and the filter matches it there: no warning."""
    folder = write_policy(
        tmp_path / "policies", POLICY.format(where="statut in ('actif', 'Annule', 'clos')")
    )
    result = check_policies(hospital.conn, folder)
    assert result.errors == []
    enums = [w for w in result.warnings if "enum" in w.message]
    assert {str(w.location) for w in enums} == {f"{folder / 'p.yaml'}:8:12"}  # the `where:` line
    case = (
        "'Annule' is not a label of the enum column sejours.statut ('actif', 'annule')",
        "write it as the enum does, 'annule': PostgreSQL compares labels exactly",
    )
    unknown = (
        "'clos' is not a label of the enum column sejours.statut ('actif', 'annule')",
        "use one of its labels: the filter never matches this one",
    )
    expected = [case, unknown] if engine == "postgresql" else [unknown]
    assert [(w.message, w.hint) for w in enums] == expected


MINIMISE = """
name: contacts
subject: {{table: patients, key: id}}
dates:
  dernier_sejour: {{latest: sortie, over: sejours}}
retain_until: dernier_sejour + 20 years
phases:
  - name: contacts
    due: retain_until
    action: {action}
    columns:
      - {column}
"""


@pytest.mark.parametrize(
    ("action", "column", "message"),
    [
        ("pseudonymize", "statut", "pseudonymize would write another value"),
        ("scrub", "statut", "scrub would write another value"),
        ("generalize", "{column: statut, to: department}", "generalize would write another"),
        ("erase", "{column: statut, value: inconnu}", "'inconnu' is none of its labels"),
    ],
)
def test_an_action_writing_a_value_an_enum_cannot_hold_is_refused(
    hospital: EngineDB, tmp_path: Path, action: str, column: str, message: str
) -> None:
    folder = write_policy(tmp_path / "policies", MINIMISE.format(action=action, column=column))
    (problem,) = check_policies(hospital.conn, folder).errors
    assert "patients.statut" in problem.message or "'statut'" in problem.message
    assert message in problem.message
    assert problem.hint is not None and "erase" in problem.hint


def test_erasing_to_a_label_in_another_case_follows_the_engine(
    hospital: EngineDB, engine: str, tmp_path: Path
) -> None:
    """MariaDB stores 'ANNULE' as 'annule' (its collation ignores case); PostgreSQL has no such
    label."""
    folder = write_policy(
        tmp_path / "policies",
        MINIMISE.format(action="erase", column="{column: statut, value: ANNULE}"),
    )
    errors = [p.message for p in check_policies(hospital.conn, folder).errors]
    if engine == "postgresql":
        assert errors == ["'statut' (etat) is an enum: 'ANNULE' is none of its labels"]
    else:
        assert errors == []


def test_an_enum_column_is_erased_to_one_of_its_labels(hospital: EngineDB, tmp_path: Path) -> None:
    folder = write_policy(
        tmp_path / "policies",
        MINIMISE.format(action="erase", column="{column: statut, value: annule}"),
    )
    assert check_policies(hospital.conn, folder).errors == []
    report = run(hospital.conn, hospital.settings(folder), at=date(2031, 6, 1))
    # due: patients 2 (2010) and 3 (1990), whose label is that value already; 1 (2020) is not
    assert (report.phases[0].proposed, report.phases[0].acted) == (1, 1)
    rows = hospital.conn.execute("SELECT id, statut FROM patients ORDER BY id").fetchall()
    assert [(int(i), str(s)) for i, s in rows] == [(1, "actif"), (2, "annule"), (3, "annule")]


@pytest.mark.parametrize("domain", ["denum", "denum2"])
def test_a_domain_over_an_enum_is_filtered_and_erased_as_the_enum(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path, domain: str
) -> None:
    """PostgreSQL: a domain over an enum (or over such a domain) has no `=` of its own
    (`operator does not exist: denum = denum`); the filter reads its labels and the erasure
    compares as the enum does."""
    conn.execute(
        "CREATE TYPE etat AS ENUM ('actif', 'annule'); CREATE DOMAIN denum AS etat; "
        "CREATE DOMAIN denum2 AS denum; "
        f"CREATE TABLE patients (id integer PRIMARY KEY, tel varchar(20), statut {domain}); "
        "CREATE TABLE sejours (id integer PRIMARY KEY, "
        f"patient_id integer NOT NULL REFERENCES patients, sortie date, statut {domain})"
    )
    conn.execute(DATA)
    erase = MINIMISE.format(action="erase", column="{column: statut, value: annule}")
    folder = write_policy(tmp_path / "policies", erase)
    assert check_policies(conn, folder).errors == []
    report = run(conn, settings(db_url, folder), at=date(2031, 6, 1))
    assert (report.phases[0].proposed, report.phases[0].acted) == (1, 1)
    rows = conn.execute("SELECT id, statut::text FROM patients ORDER BY id").fetchall()
    assert rows == [(1, "actif"), (2, "annule"), (3, "annule")]

    folder = write_policy(tmp_path / "filtered", POLICY.format(where="statut = 'actif'"))
    assert check_policies(conn, folder).errors == []
    report = run(conn, settings(db_url, folder), at=date(2025, 6, 1))
    assert report.phases[0].acted == 1
    assert [r[0] for r in conn.execute("SELECT id FROM patients ORDER BY id")] == [2, 3]


def test_a_domain_over_an_enum_that_joins_the_record_is_refused_by_check(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A stay keyed by (id, statut), statut of a domain over an enum: the batches find rows by
    their primary key, and PostgreSQL has no `=` for such a domain; `check` says so first."""
    conn.execute(
        "CREATE TYPE etat AS ENUM ('actif', 'annule'); CREATE DOMAIN denum AS etat; "
        "CREATE TABLE patients (id integer PRIMARY KEY, tel varchar(20), statut denum); "
        "CREATE TABLE sejours (id integer, patient_id integer NOT NULL REFERENCES patients, "
        "sortie date, statut denum, PRIMARY KEY (id, statut))"
    )
    folder = write_policy(tmp_path / "policies", POLICY.format(where="sortie is not null"))
    (error,) = check_policies(conn, folder).errors
    assert "public.sejours.statut joins the record's rows" in error.message
    assert "domain denum over the enum etat" in error.message
    assert error.hint is not None
    assert "ALTER TABLE public.sejours ALTER COLUMN statut TYPE etat" in error.hint
