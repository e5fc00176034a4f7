"""Row-level security that hides rows from the tool's account (PostgreSQL).

An outside review: as a least-privilege role, an archive deleted (through ON DELETE CASCADE)
confidential notes that row-level security hid from the role: no archive file held them, no
audit entry counted them. `check` now refuses a record holding such a table, and the tool's
sessions run with row_security = off: a statement the policies would filter fails instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo, sql

from tests.engine_helpers import cli, write_policy

POLICY = """
name: dossier
subject: {table: patients, key: patient_id}
dates:
  sortie: {latest: jour, over: sejours}
retain_until: sortie + 20 years
phases:
  - name: destruction
    due: retain_until
    action: purge
"""


@pytest.fixture
def role_url(conn: psycopg.Connection[Any], db_url: str) -> Iterator[str]:
    """A login role that reads and deletes everything, subject to row-level security."""
    role = f"rt_rls_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        for statement in (
            "CREATE TABLE patients (patient_id int PRIMARY KEY)",
            "CREATE TABLE sejours (id int PRIMARY KEY, patient_id int NOT NULL "
            "REFERENCES patients, jour date NOT NULL)",
            "CREATE TABLE notes (id int PRIMARY KEY, patient_id int NOT NULL "
            "REFERENCES patients ON DELETE CASCADE, service text NOT NULL)",
            "ALTER TABLE notes ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY notes_service ON notes "
            "USING (service = current_setting('app.service', true))",
            "INSERT INTO patients VALUES (1)",
            "INSERT INTO sejours VALUES (1, 1, '1990-01-01')",
            "INSERT INTO notes VALUES (1, 1, 'psychiatrie')",
        ):
            conn.execute(statement)
        conn.execute(
            sql.SQL("GRANT ALL ON ALL TABLES IN SCHEMA public TO {}").format(sql.Identifier(role))
        )
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(str(conninfo.conninfo_to_dict(db_url)["dbname"])), sql.Identifier(role)
        ))  # fmt: skip
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        params = conninfo.conninfo_to_dict(db_url)
        params["user"] = role
        yield conninfo.make_conninfo("", **params)
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_check_refuses_a_record_whose_rows_row_level_security_hides(
    role_url: str, db_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    write_policy(folder, POLICY)
    done = cli(role_url, "check", policies=folder)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "row-level security hides rows of public.notes from this account" in out
    assert "BYPASSRLS" in out
    # as the owner (the tables' creator, a superuser here), nothing is hidden
    assert cli(db_url, "check", policies=folder).returncode == 0


def test_a_statement_row_level_security_would_filter_fails_instead(
    role_url: str, conn: psycopg.Connection[Any]
) -> None:
    from retention.db import connect
    from tests.engine_helpers import settings

    refused = pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security")
    with connect(settings(role_url)) as tool, refused:
        tool.execute("SELECT count(*) FROM notes")
    row = conn.execute("SELECT count(*) FROM notes").fetchone()
    assert row == (1,)


def test_a_scan_says_which_table_row_level_security_kept_it_from_reading(
    role_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    write_policy(folder, POLICY)
    done = cli(role_url, "scan", policies=folder)
    out = done.stdout + done.stderr
    assert "Traceback" not in out
    assert "notes" in out and "row-level security" in out, out


def test_check_refuses_a_purge_over_a_table_other_tables_inherit_from(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """An outside review: a DELETE on an inheritance parent deletes the children's rows too;
    every batch then rolled back (rows changed under it) on every run, the run exiting 0."""
    for statement in (
        "CREATE TABLE patients (patient_id int PRIMARY KEY)",
        "CREATE TABLE sejours (id int PRIMARY KEY, patient_id int NOT NULL "
        "REFERENCES patients, jour date NOT NULL)",
        "CREATE TABLE documents (doc_id int PRIMARY KEY, patient_id int NOT NULL)",
        "CREATE TABLE documents_scannes (ocr text) INHERITS (documents)",
        # a grandchild, in another schema (a review: direct children of the same schema only)
        "CREATE SCHEMA archives",
        "CREATE TABLE archives.vieux_scans () INHERITS (documents_scannes)",
    ):
        conn.execute(statement)
    folder = tmp_path / "policies"
    links = (
        "related:\n  links:\n    - {table: documents, column: patient_id}\n"
        "    - {table: documents_scannes, column: patient_id}\ndates:"
    )
    write_policy(folder, POLICY.replace("dates:", links))
    done = cli(db_url, "check", policies=folder)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert (
        "public.documents_scannes inherit(s) from public.documents, and both are in the record"
        in out
    )
    grandchild = links.replace(
        "documents_scannes, column: patient_id}", "archives.vieux_scans, column: patient_id}"
    )
    write_policy(folder, POLICY.replace("dates:", grandchild))
    done = cli(db_url, "check", policies=folder)
    out = " ".join((done.stdout + done.stderr).split())
    assert "archives.vieux_scans inherit(s) from public.documents" in out, out
    # the parent alone: its rows include the child's, read and deleted alike
    parent_only = links.replace("    - {table: documents_scannes, column: patient_id}\n", "")
    write_policy(folder, POLICY.replace("dates:", parent_only))
    done = cli(db_url, "check", policies=folder)
    assert done.returncode == 0, done.stdout + done.stderr
