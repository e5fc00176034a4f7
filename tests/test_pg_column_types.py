"""Column types whose limits PostgreSQL keeps outside the column (an outside review): a
generated column, and a domain over varchar(n), possibly NOT NULL. check accepted phases on
them that every run then failed (SQLSTATE 428C9, 22001, 23502)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import psycopg

from tests.engine_helpers import cli, run, settings, write_policy

POLICY = """
name: contacts
subject: {{table: patients, key: patient_id}}
dates:
  venue: {{column: venue}}
retain_until: venue + 3 years
phases:
  - name: coordonnees
    due: retain_until
    action: {action}
    columns: [{columns}]
"""


def _schema(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        """
        CREATE DOMAIN telephone AS varchar(20) NOT NULL;
        CREATE TABLE patients (
            patient_id int PRIMARY KEY, venue date NOT NULL, nom varchar(40),
            tel telephone, nom_complet text GENERATED ALWAYS AS (upper(nom)) STORED);
        INSERT INTO patients (patient_id, venue, nom, tel) VALUES (1, '2000-01-01', 'x', '0102');
        """
    )


def _check(db_url: str, folder: Path, action: str, columns: str) -> str:
    write_policy(folder, POLICY.format(action=action, columns=columns))
    done = cli(db_url, "check", policies=folder)
    return done.stdout + done.stderr


def test_no_action_writes_a_generated_column(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    _schema(conn)
    out = _check(db_url, tmp_path / "p", "pseudonymize", "nom_complet")
    assert "'nom_complet' (text) is a generated column" in out
    assert "act on the columns it is computed from" in out


def test_a_domain_gives_its_length_and_its_not_null(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    _schema(conn)
    out = _check(db_url, tmp_path / "p", "erase", "tel")
    assert "'tel' (telephone) is NOT NULL and has no default" in out
    # a pseudonym fits the domain's 20 characters: the run writes it
    folder = tmp_path / "q"
    assert "error" not in _check(db_url, folder, "pseudonymize", "tel")
    run(conn, settings(db_url, folder), at=date(2026, 12, 6))
    row = conn.execute("SELECT tel FROM patients").fetchone()
    assert row is not None and row[0] != "0102" and len(row[0]) <= 20
