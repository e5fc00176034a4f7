"""Archive format 2 (CSV) against the cases that differ from JSON: values compared as the live
database compares them, encodings, the end-of-data marker, generated columns, a table changed
during a run, and errors that must not quote a value. Each test failed on the first version 2
writer (found by a review)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from retention.archive import restore
from retention.archive.errors import ArchiveConfigError, ArchiveError
from retention.archive.storage import LocalStorage
from retention.db import connect
from retention.engine.progress import LogReporter
from retention.settings import Settings
from tests.archive_helpers import KeyPair, archive_settings, key_pair
from tests.engine_helpers import run, trail, write_policy
from tests.fix_db import with_dbname
from tests.test_archive_types import POLICY

LINKED = POLICY.replace(
    "dates:", "related:\n  links:\n    - table: notes\n      column: person_id\ndates:"
)


def _archive(
    conn: psycopg.Connection[Any], url: str, tmp_path: Path, ddl: str, rows: str, policy: str
) -> tuple[Settings, KeyPair]:
    keys = key_pair(tmp_path / "keys")
    conn.execute(ddl)
    conn.execute(rows)
    config = archive_settings(
        url, write_policy(tmp_path / "policies", policy), tmp_path / "archive", [keys.recipient]
    )
    report = run(conn, config, at=date(2025, 1, 1))
    assert report.outcome == "completed", report
    assert conn.execute("SELECT count(*) FROM people").fetchone() == (0,)
    return config, keys


def _load(
    conn: psycopg.Connection[Any], config: Settings, keys: KeyPair, subject: str
) -> restore.SubjectRecord:
    assert config.archive_dir is not None
    found = restore.find(conn, "retention", trail(conn, config), subject, "people")
    return restore.load(conn, LocalStorage(config.archive_dir), found[0], [keys.identity], subject)


@pytest.mark.parametrize(
    ("key_type", "link_type", "key"),
    [("int", "numeric(10,2)", "1"), ("varchar(8)", "char(8)", "P1")],
)
def test_linked_rows_are_found_as_the_database_compares_them(
    conn: psycopg.Connection[Any],
    db_url: str,
    tmp_path: Path,
    key_type: str,
    link_type: str,
    key: str,
) -> None:
    """`1.00` = `1` (numeric, int) and `'P1      '` = `'P1'` (char, varchar) in the database
    that archived them: restore finds the note too (as text they differ)."""
    ddl = (
        f"CREATE TABLE people (id {key_type} PRIMARY KEY, last_visit timestamptz);"
        f"CREATE TABLE notes (note_id int PRIMARY KEY, person_id {link_type}, body text);"
    )
    rows = (
        f"INSERT INTO people VALUES ('{key}', '2001-01-01');"
        f"INSERT INTO notes VALUES (10, '{key}', 'kept note');"
    )
    config, keys = _archive(conn, db_url, tmp_path, ddl, rows, LINKED)
    assert conn.execute("SELECT count(*) FROM notes").fetchone() == (0,)
    record = _load(conn, config, keys, key)
    assert record.rows == {"public.people": 1, "public.notes": 1}
    restore.into_database(conn, "retention", trail(conn, config), record, key)
    assert conn.execute("SELECT body FROM notes").fetchall() == [("kept note",)]


def test_a_refused_value_is_not_quoted_in_the_error(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    ddl = "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz, naissance text);"
    rows = "INSERT INTO people VALUES (1, '2001-01-01', 'Dupont-1975-00-00');"
    config, keys = _archive(conn, db_url, tmp_path, ddl, rows, POLICY)
    conn.execute("ALTER TABLE people ALTER naissance TYPE date USING NULL")  # years later
    record = _load(conn, config, keys, "1")
    with pytest.raises(ArchiveError) as refused:
        restore.into_database(conn, "retention", trail(conn, config), record, "1")
    message = refused.value.message
    assert "public.people" in message and "SQLSTATE 22" in message
    assert "Dupont" not in message and "1975" not in message


def test_a_one_column_row_holding_the_end_of_data_marker_round_trips(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    r"""`\.` alone on a line ends COPY's data: the writer quotes it, as PostgreSQL does."""
    ddl = (
        "CREATE TABLE people (id text PRIMARY KEY, last_visit timestamptz);"
        "CREATE TABLE tags (person_id text REFERENCES people);"
    )
    rows = (
        r"INSERT INTO people VALUES ('\.', '2001-01-01'); INSERT INTO tags VALUES ('\.'), ('\.');"
    )
    config, keys = _archive(conn, db_url, tmp_path, ddl, rows, POLICY)
    record = _load(conn, config, keys, "\\.")
    assert record.rows == {"public.people": 1, "public.tags": 2}
    restore.into_database(conn, "retention", trail(conn, config), record, "\\.")
    assert conn.execute("SELECT count(*) FROM tags WHERE person_id = '\\.'").fetchone() == (2,)


def test_generated_columns_are_computed_again_on_restore(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    ddl = (
        "CREATE TABLE people (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "last_visit timestamptz, nom text, upper_nom text GENERATED ALWAYS AS (upper(nom)) STORED)"
    )
    rows = "INSERT INTO people (last_visit, nom) VALUES ('2001-01-01', 'x,\"y\"')"
    config, keys = _archive(conn, db_url, tmp_path, ddl, rows, POLICY)
    record = _load(conn, config, keys, "1")
    restore.into_database(conn, "retention", trail(conn, config), record, "1")
    assert conn.execute("SELECT id, nom, upper_nom FROM people").fetchall() == [
        (1, 'x,"y"', 'X,"Y"')
    ]


def test_a_column_added_during_the_run_stops_the_batch_before_any_delete(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """The run's statements list the columns it read at its start: a column a migration adds
    meanwhile would be deleted without being written. The batch rolls back instead, and the
    next run archives the row with its new column."""

    class Migration(LogReporter):
        def start(self, label: str, total: int) -> None:
            super().start(label, total)
            with psycopg.connect(db_url, autocommit=True) as other:
                other.execute("ALTER TABLE people ADD COLUMN consent text")
                other.execute("UPDATE people SET consent = 'refus 2024'")

    keys = key_pair(tmp_path / "keys")
    conn.execute("CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz, nom text)")
    conn.execute("INSERT INTO people VALUES (1, '2001-01-01', 'x')")
    config = archive_settings(
        db_url, write_policy(tmp_path / "policies", POLICY), tmp_path / "archive", [keys.recipient]
    )
    with pytest.raises(ArchiveError, match="columns changed since the run started"):
        run(conn, config, at=date(2025, 1, 1), progress=Migration())
    assert conn.execute("SELECT consent FROM people").fetchall() == [("refus 2024",)]
    assert run(conn, config, at=date(2025, 1, 1)).outcome == "completed"
    record = _load(conn, config, keys, "1")
    assert b"refus 2024" in record.tables["public.people"]


@pytest.fixture
def latin1_url(pg_admin_url: str) -> Iterator[str]:
    name = f"rt_latin1_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL(
                "CREATE DATABASE {} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
                "TEMPLATE template0"
            ).format(sql.Identifier(name))
        )
    try:
        yield with_dbname(pg_admin_url, name)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def test_archives_are_utf8_whatever_the_database_encoding(
    latin1_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """retention's connections speak UTF-8 (even with PGCLIENTENCODING set otherwise), so a
    LATIN1 database's archive is UTF-8, as its README says, and restores the same text; a
    connection in another encoding is refused before anything changes."""
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    config, keys = _latin1_config(latin1_url, tmp_path)
    with psycopg.connect(latin1_url, autocommit=True) as latin1:
        assert latin1.info.encoding == "iso8859-1"
        latin1.execute("CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz, nom text)")
        latin1.execute("INSERT INTO people VALUES (1, '2001-01-01', 'Zoë Hélène')")
        with pytest.raises(ArchiveConfigError, match="client_encoding is iso8859-1"):
            run(latin1, config, at=date(2025, 1, 1))
        assert latin1.execute("SELECT count(*) FROM people").fetchone() == (1,)
    with connect(config) as conn:
        assert conn.info.encoding == "utf-8"
        assert run(conn, config, at=date(2025, 1, 1)).outcome == "completed"
        record = _load(conn, config, keys, "1")
        assert "Zoë Hélène".encode() in record.tables["public.people"]
        restore.into_database(conn, "retention", trail(conn, config), record, "1")
        assert conn.execute("SELECT nom FROM people").fetchall() == [("Zoë Hélène",)]


def _latin1_config(url: str, tmp_path: Path) -> tuple[Settings, KeyPair]:
    keys = key_pair(tmp_path / "keys")
    policies = write_policy(tmp_path / "policies", POLICY)
    return archive_settings(url, policies, tmp_path / "archive", [keys.recipient]), keys
