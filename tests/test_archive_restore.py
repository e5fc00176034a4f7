"""Archive format 2 (CSV) against the cases that differ from JSON: values compared as the live
database compares them, encodings, the end-of-data marker, generated columns, a table changed
during a run, and errors that must not quote a value. Each test failed on the first version 2
writer (found by a review)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from retention.archive import restore
from retention.archive.errors import ArchiveError
from retention.archive.storage import LocalStorage
from retention.cli.main import _database_error, main
from retention.db import connect
from retention.engine.outcome import RunReport
from retention.engine.progress import LogReporter
from retention.engines import Connection
from retention.engines.errors import describe_error as describe
from retention.errors import PolicyError
from retention.policy.check import bound_policies
from retention.settings import Settings
from tests.archive_helpers import KeyPair, archive_settings, key_pair
from tests.engine_helpers import AUDIT_KEY, run, trail, write_policy
from tests.fix_db import with_dbname
from tests.key_helpers import AUDIT_SIGNING_KEY
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


def _load(conn: Connection, config: Settings, keys: KeyPair, subject: str) -> restore.SubjectRecord:
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
    """Generated columns are left to the server, identity values kept, and every value is
    checked as a plain COPY checks it (a name too long for a narrowed column is refused, not
    cut)."""
    ddl = (
        "CREATE TABLE people (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "last_visit timestamptz, nom varchar(40), "
        "code text GENERATED ALWAYS AS ('P' || id) STORED)"
    )
    rows = (
        "INSERT INTO people (last_visit, nom) VALUES ('2001-01-01', 'x,\"y\"'),"
        " ('2001-01-01', 'Dupont-Durand')"
    )
    config, keys = _archive(conn, db_url, tmp_path, ddl, rows, POLICY)
    restore.into_database(
        conn, "retention", trail(conn, config), _load(conn, config, keys, "1"), "1"
    )
    assert conn.execute("SELECT id, nom, code FROM people").fetchall() == [(1, 'x,"y"', "P1")]
    conn.execute("ALTER TABLE people ALTER nom TYPE varchar(6)")
    record = _load(conn, config, keys, "2")
    with pytest.raises(ArchiveError, match="SQLSTATE 22001") as refused:
        restore.into_database(conn, "retention", trail(conn, config), record, "2")
    assert "Dupont" not in refused.value.message
    assert conn.execute("SELECT count(*) FROM people").fetchone() == (1,)


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
    report = run(conn, config, at=date(2025, 1, 1), progress=Migration())
    _assert_failed(conn, report, "columns changed since the run started")
    assert conn.execute("SELECT consent FROM people").fetchall() == [("refus 2024",)]
    assert run(conn, config, at=date(2025, 1, 1)).outcome == "completed"
    record = _load(conn, config, keys, "1")
    assert b"refus 2024" in record.tables["public.people"]


@contextmanager
def _database(admin_url: str, encoding: str) -> Iterator[str]:
    """A new database in `encoding` for the block; yields its URL."""
    name = f"rt_{encoding.lower()}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL(
                "CREATE DATABASE {} ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
            ).format(sql.Identifier(name), sql.Literal(encoding))
        )
    try:
        yield with_dbname(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def latin1_url(pg_admin_url: str) -> Iterator[str]:
    with _database(pg_admin_url, "LATIN1") as url:
        yield url


def test_archives_are_utf8_whatever_the_database_encoding(
    latin1_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """retention's connections speak UTF-8 (even with PGCLIENTENCODING set otherwise), so a
    LATIN1 database's archive is UTF-8, as its README says, and restores the same text; a
    connection in another encoding is refused before anything changes."""
    monkeypatch.setenv("PGCLIENTENCODING", "LATIN1")
    config, keys = _settings(latin1_url, tmp_path)
    with psycopg.connect(latin1_url, autocommit=True) as latin1:
        assert latin1.info.encoding == "iso8859-1"
        latin1.execute("CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz, nom text)")
        latin1.execute("INSERT INTO people VALUES (1, '2001-01-01', 'Zoë Hélène')")
        report = run(latin1, config, at=date(2025, 1, 1))
        _assert_failed(latin1, report, "client_encoding is iso8859-1")
        assert latin1.execute("SELECT count(*) FROM people").fetchone() == (1,)
    with connect(config) as conn:
        assert conn.info.encoding == "utf-8"
        assert run(conn, config, at=date(2025, 1, 1)).outcome == "completed"
        record = _load(conn, config, keys, "1")
        assert "Zoë Hélène".encode() in record.tables["public.people"]
        restore.into_database(conn, "retention", trail(conn, config), record, "1")
        assert conn.execute("SELECT nom FROM people").fetchall() == [("Zoë Hélène",)]


def _settings(url: str, tmp_path: Path, policy: str = POLICY) -> tuple[Settings, KeyPair]:
    keys = key_pair(tmp_path / "keys")
    policies = write_policy(tmp_path / "policies", policy)
    return archive_settings(url, policies, tmp_path / "archive", [keys.recipient]), keys


def test_restore_to_files_needs_no_live_table_and_never_truncates_a_key(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """Links compare in the archived types (without modifier): a table dropped since, a key
    narrowed (a cast to varchar(5) would make P0001A and P0001B one) or retyped (X-18 is no
    bigint) changes nothing to which rows are the subject's."""
    ddl = (
        "CREATE TABLE people (id varchar(20) PRIMARY KEY, last_visit timestamptz);"
        "CREATE TABLE notes (note_id int PRIMARY KEY, person_id varchar(20), body text);"
    )
    rows = (
        "INSERT INTO people VALUES ('P0001A', '2001-01-01'), ('P0001B', '2001-01-01'),"
        " ('X-18', '2001-01-01');"
        "INSERT INTO notes VALUES (10, 'P0001A', 'note of A'), (11, 'P0001B', 'note of B');"
    )
    config, keys = _archive(conn, db_url, tmp_path, ddl, rows, LINKED)
    conn.execute("ALTER TABLE people ALTER id TYPE varchar(5)")  # years later, empty tables
    conn.execute("ALTER TABLE notes ALTER person_id TYPE varchar(5)")
    record = _load(conn, config, keys, "P0001A")
    assert record.rows == {"public.people": 1, "public.notes": 1}
    conn.execute("DROP TABLE notes")
    conn.execute("DROP TABLE people")
    record = _load(conn, config, keys, "P0001A")
    assert record.rows == {"public.people": 1, "public.notes": 1}
    folder = tmp_path / "out"
    restore.to_directory(conn, trail(conn, config), record, "P0001A", folder)
    exported = (folder / "public.notes.csv").read_text(encoding="utf-8")
    assert "note of A" in exported and "note of B" not in exported


def _reset_timeout(conn: psycopg.Connection[Any]) -> None:
    """RESET statement_timeout, which the 1 ms timeout itself may cancel on a loaded machine
    (seen once in CI's suite: QueryCanceled on the RESET)."""
    for _ in range(100):
        try:
            conn.execute("RESET statement_timeout")
            return
        except psycopg.errors.QueryCanceled:
            continue
    raise AssertionError("statement_timeout could not be reset")


def test_no_database_error_carries_an_archived_row_out(
    conn: psycopg.Connection[Any],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trigger refusing the load, a statement cancelled while the segment loads: the server's
    text (its CONTEXT quotes the COPY line) never reaches the user, nor a traceback."""
    ddl = "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz, nom text)"
    # 8 MB in the row: loading its segment takes well over the 1 ms timeout below, always
    rows = "INSERT INTO people VALUES (1, '2001-01-01', 'Dupont Jeanne ' || repeat('x', 8000000))"
    config, keys = _archive(conn, db_url, tmp_path, ddl, rows, POLICY)
    conn.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN RAISE EXCEPTION 'inserts are closed'; END$$;"
        "CREATE TRIGGER refuse BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    record = _load(conn, config, keys, "1")
    with pytest.raises(ArchiveError, match="SQLSTATE P0001") as refused:
        restore.into_database(conn, "retention", trail(conn, config), record, "1")
    assert "Dupont" not in refused.value.message
    assert config.archive_dir is not None
    found = restore.find(conn, "retention", trail(conn, config), "1", "people")
    conn.execute("SET statement_timeout = '1ms'")  # after finding it: the load is cancelled
    with pytest.raises(ArchiveError, match="SQLSTATE 57014") as cancelled:
        restore.load(conn, LocalStorage(config.archive_dir), found[0], [keys.identity], "1")
    _reset_timeout(conn)
    assert "Dupont" not in cancelled.value.message
    for name, value in {
        "DATABASE_URL": db_url,
        "AUDIT_KEY": AUDIT_KEY,
        "AUDIT_SIGNING_KEY": AUDIT_SIGNING_KEY,
        "POLICIES_DIR": str(tmp_path / "policies"),
        "ARCHIVE_DIR": str(config.archive_dir),
        "ARCHIVE_RECIPIENTS": keys.recipient,
    }.items():
        monkeypatch.setenv(f"RETENTION_{name}", value)
    args = ["archive", "restore", "--subject", "1", "--identity", str(keys.file)]
    assert main([*args, "--into-database"]) == 6
    out = capsys.readouterr()
    assert "SQLSTATE P0001" in out.err and "Dupont" not in out.err + out.out


@pytest.mark.parametrize(
    ("ddl", "policy"),
    [
        (
            "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz, "
            "guardian_id int REFERENCES people ON DELETE CASCADE)",
            POLICY,
        ),
        (
            "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz);"
            "CREATE TABLE consents (id int PRIMARY KEY, "
            "person_id int REFERENCES people ON DELETE CASCADE)",
            POLICY.replace("dates:", "related:\n  exclude: [consents]\ndates:"),
        ),
    ],
    ids=["self-reference", "excluded-table"],
)
def test_an_archive_never_cascades_into_rows_it_does_not_write(
    conn: psycopg.Connection[Any], tmp_path: Path, ddl: str, policy: str
) -> None:
    """A due guardian's archive would delete a ward not due; an excluded table's rows would go
    with their patient: `check` refuses such a policy, with file, line and a hint."""
    conn.execute(ddl)
    with pytest.raises(PolicyError) as refused:
        bound_policies(conn, write_policy(tmp_path / "policies", policy))
    text = refused.value.render()
    assert "ON DELETE CASCADE" in text and "no archive holds" in text
    assert re.search(r"\.yaml:\d+:\d+: error", text) and "RESTRICT" in text


@pytest.mark.parametrize("change", ["inheritance", "view"])
def test_a_table_that_is_no_longer_what_the_run_read_stops_the_batch(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path, change: str
) -> None:
    """A child table by inheritance (its own columns would be deleted with its parent's rows,
    unwritten), or a migration replacing the table by a compatibility view during the run:
    nothing is deleted."""

    class Migration(LogReporter):
        def start(self, label: str, total: int) -> None:
            super().start(label, total)
            with psycopg.connect(db_url, autocommit=True) as other:
                if change == "inheritance":
                    other.execute("CREATE TABLE notes_2019 (diagnosis text) INHERITS (notes)")
                    other.execute("INSERT INTO notes_2019 VALUES (11, 1, 'n', 'secret')")
                else:
                    other.execute(
                        "ALTER TABLE notes RENAME TO notes_v2;"
                        "ALTER TABLE notes_v2 ADD COLUMN diagnosis text;"
                        "UPDATE notes_v2 SET diagnosis = 'secret';"
                        "CREATE VIEW notes AS SELECT note_id, person_id, body FROM notes_v2"
                    )

    keys = key_pair(tmp_path / "keys")
    conn.execute(
        "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz);"
        "CREATE TABLE notes (note_id int PRIMARY KEY, person_id int, body text);"
        "INSERT INTO people VALUES (1, '2001-01-01'); INSERT INTO notes VALUES (10, 1, 'n');"
    )
    config = archive_settings(
        db_url, write_policy(tmp_path / "policies", LINKED), tmp_path / "archive", [keys.recipient]
    )
    report = run(conn, config, at=date(2025, 1, 1), progress=Migration())
    _assert_failed(
        conn,
        report,
        "child tables by inheritance" if change == "inheritance" else "changed since the run",
    )
    assert conn.execute("SELECT count(*) FROM people").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM notes").fetchone() == (
        2 if change == "inheritance" else 1,
    )
    child = "notes_2019" if change == "inheritance" else "notes_v2"
    kept = conn.execute(sql.SQL("SELECT diagnosis FROM {}").format(sql.Identifier(child)))
    assert kept.fetchall() == [("secret",)]


def test_a_sql_ascii_database_is_refused_before_anything_changes(
    pg_admin_url: str, tmp_path: Path
) -> None:
    with _database(pg_admin_url, "SQL_ASCII") as url:
        config, _ = _settings(url, tmp_path)
        with connect(config) as conn:
            conn.execute("CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz)")
            conn.execute("INSERT INTO people VALUES (1, '2001-01-01')")
            _assert_failed(conn, run(conn, config, at=date(2025, 1, 1)), "SQL_ASCII")
            assert conn.execute("SELECT count(*) FROM people").fetchone() == (1,)


def _assert_failed(conn: Connection, report: RunReport, reason: str) -> None:
    """The batch failed with `reason`, in the report and in the audit trail; nothing changed."""
    assert report.outcome != "completed"
    assert reason in (report.phases[0].error or "")
    entries = conn.execute(
        "SELECT detail->>'error' FROM retention.audit WHERE event = 'batch_failed'"
    ).fetchall()
    assert entries and all(reason in (e or "") for (e,) in entries)


@pytest.mark.parametrize(
    ("errcode", "described"),
    [
        ("P0001", "RaiseException (SQLSTATE P0001)"),
        # a class whose server texts are kept, but raised by the database's own code
        ("42501", "InsufficientPrivilege (SQLSTATE 42501)"),
    ],
)
def test_a_failed_batch_keeps_no_server_text_in_the_audit_trail(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path, errcode: str, described: str
) -> None:
    """A trigger's message can quote the row (RAISE ... OLD.nom), with any SQLSTATE: the
    append-only trail keeps the error's class, SQLSTATE and object names only."""
    keys = key_pair(tmp_path / "keys")
    conn.execute(
        "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz, nom text);"
        "INSERT INTO people VALUES (1, '2001-01-01', 'Dupont');"
        "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN RAISE EXCEPTION 'patient % has an open stay', OLD.nom "
        f"USING ERRCODE = '{errcode}'; END$$;"
        "CREATE TRIGGER keep BEFORE DELETE ON people FOR EACH ROW EXECUTE FUNCTION keep()"
    )
    accepted = POLICY + "    triggers: [keep]\n"  # reviewed: it deletes nothing, it refuses
    config = archive_settings(
        db_url,
        write_policy(tmp_path / "policies", accepted),
        tmp_path / "archive",
        [keys.recipient],
    )
    report = run(conn, config, at=date(2025, 1, 1))
    _assert_failed(conn, report, described)
    trail_text = conn.execute("SELECT string_agg(t::text, ' ') FROM retention.audit t").fetchone()
    assert trail_text is not None and "Dupont" not in trail_text[0]
    assert conn.execute("SELECT count(*) FROM people").fetchone() == (1,)


def test_rows_without_a_primary_key_are_told_apart_across_partitions(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """A table reached by two links and without a primary key is matched on its rows'
    addresses: a ctid is unique within one partition only, so (tableoid, ctid)."""
    conn.execute(
        "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz);"
        "CREATE TABLE visits (visit_id int PRIMARY KEY, person_id int REFERENCES people);"
        "CREATE TABLE documents (person_id int REFERENCES people, "
        "visit_id int REFERENCES visits, year int, body text) PARTITION BY LIST (year);"
        "CREATE TABLE documents_2001 PARTITION OF documents FOR VALUES IN (2001);"
        "CREATE TABLE documents_2024 PARTITION OF documents FOR VALUES IN (2024);"
        "INSERT INTO people VALUES (1, '2001-01-01'), (2, '2024-12-01');"
        "INSERT INTO visits VALUES (100, 1), (200, 2);"
        "INSERT INTO documents VALUES (1, 100, 2001, 'doc of 1'), (2, 200, 2024, 'doc of 2');"
    )
    same = conn.execute("SELECT count(DISTINCT ctid) FROM documents").fetchone()
    assert same == (1,)  # both rows at (0,1), each in its partition
    config, keys = _settings(db_url, tmp_path)
    assert run(conn, config, at=date(2025, 1, 1)).outcome == "completed"
    assert conn.execute("SELECT body FROM documents").fetchall() == [("doc of 2",)]
    assert _load(conn, config, keys, "1").rows["public.documents"] == 1


NO_FOLLOW = POLICY.replace(
    "dates:",
    "related:\n  follow_foreign_keys: false\n  links:\n"
    "    - table: visits\n      column: person_id\n"
    "    - table: notes\n      column: person_id\ndates:",
)


@pytest.mark.parametrize(
    ("ddl", "policy"),
    [
        (  # not a link of the record (follow_foreign_keys: false): visits go before notes
            "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz);"
            "CREATE TABLE visits (visit_id int PRIMARY KEY, person_id int REFERENCES people);"
            "CREATE TABLE notes (note_id int PRIMARY KEY, person_id int REFERENCES people, "
            "visit_id int REFERENCES visits ON DELETE CASCADE)",
            NO_FOLLOW,
        ),
        (  # the ward keeps living, without the link to the archived guardian
            "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz, "
            "guardian_id int REFERENCES people ON DELETE SET NULL)",
            POLICY,
        ),
    ],
    ids=["cascade-not-a-link", "set-null-self-reference"],
)
def test_an_archive_never_changes_rows_it_does_not_write(
    conn: psycopg.Connection[Any], tmp_path: Path, ddl: str, policy: str
) -> None:
    conn.execute(ddl)
    with pytest.raises(PolicyError, match="not a link of the record"):
        bound_policies(conn, write_policy(tmp_path / "policies", policy))


def test_a_self_reference_without_action_is_archived_or_kept(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """ON DELETE NO ACTION (refused for a purge, which could not delete a guardian): a
    guardian whose ward is still live fails its batch and is kept; once alone, archived."""
    conn.execute(
        "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz, "
        "guardian_id int REFERENCES people);"
        "INSERT INTO people VALUES (1, '2001-01-01', NULL), (2, '2024-06-01', 1)"
    )
    config, _ = _settings(db_url, tmp_path)
    _assert_failed(conn, run(conn, config, at=date(2025, 1, 1)), "ForeignKeyViolation")
    assert conn.execute("SELECT count(*) FROM people").fetchone() == (2,)
    conn.execute("UPDATE people SET guardian_id = NULL")
    assert run(conn, config, at=date(2025, 1, 1)).outcome == "completed"
    assert conn.execute("SELECT id FROM people").fetchall() == [(2,)]


def test_a_cascade_declared_on_a_partition_is_refused(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """A partition's foreign key that would cascade the archive's delete into rows it does not
    write counts for its partitioned table: the run refuses the policy and changes nothing
    (each batch would refuse it too: retention.archive.codec.check_tables)."""
    conn.execute(
        "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz);"
        "CREATE TABLE consents (person_id int, year int, body text) PARTITION BY LIST (year);"
        "CREATE TABLE consents_2001 PARTITION OF consents FOR VALUES IN (2001);"
        "ALTER TABLE consents_2001 ADD FOREIGN KEY (person_id) REFERENCES people "
        "ON DELETE CASCADE;"
        "INSERT INTO people VALUES (1, '2001-01-01'); INSERT INTO consents VALUES (1, 2001, 'x')"
    )
    config, _ = _settings(db_url, tmp_path)
    with pytest.raises(PolicyError, match="consents_2001_person_id_fkey ON DELETE CASCADE"):
        run(conn, config, at=date(2025, 1, 1))
    assert conn.execute("SELECT count(*) FROM consents").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM people").fetchone() == (1,)


def test_the_last_resort_shows_what_names_objects_and_hides_what_quotes_rows(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """A privilege error names the table (the operator needs it); a data error or a trigger's
    RAISE may quote a value: only its class and SQLSTATE."""
    conn.execute("CREATE TABLE t (x int)")
    role = f"rt_nobody_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_url, autocommit=True) as other:
        other.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        try:
            other.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            with pytest.raises(psycopg.Error) as denied:
                other.execute("SELECT * FROM t")
        finally:
            other.execute("RESET ROLE")
            other.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
    message, code = _database_error(denied.value)
    assert code == 4 and "permission denied for table t" in message
    assert "permission denied for table t" in describe(denied.value)  # a batch_failed entry
    with pytest.raises(psycopg.Error) as data:
        conn.execute("SELECT 'Dupont-1975'::date")
    message, code = _database_error(data.value)
    assert code == 4 and "SQLSTATE 22007" in message and "Dupont" not in message
    assert "Dupont" not in describe(data.value)


POLYMORPHIC = POLICY.replace(
    "dates:",
    "related:\n  follow_foreign_keys: false\n  links:\n"
    "    - table: visits\n      column: person_id\n"
    "    - table: files\n      polymorphic: {class_column: cls, id_column: oid_, "
    "classes: {CPerson: people, CVisit: visits}}\ndates:",
)


def test_a_key_on_a_polymorphic_column_is_not_the_link(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A CASCADE key on the id column of a polymorphic link acts on every class's rows (a visit's
    file whose id equals an archived patient's): it is not the record's link."""
    conn.execute(
        "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz);"
        "CREATE TABLE visits (visit_id int PRIMARY KEY, person_id int REFERENCES people);"
        "CREATE TABLE files (file_id int PRIMARY KEY, cls text, "
        "oid_ int REFERENCES people ON DELETE CASCADE)"
    )
    with pytest.raises(PolicyError, match="not a link of the record"):
        bound_policies(conn, write_policy(tmp_path / "policies", POLYMORPHIC))


def test_a_self_reference_with_no_action_serves_a_policy_that_archives_then_purges(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The archive needs NO ACTION or RESTRICT, a purge alone needs SET NULL or CASCADE: with
    both phases, NO ACTION is accepted (a batch the key would break fails and keeps all)."""
    conn.execute(
        "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz, "
        "guardian_id int REFERENCES people)"
    )
    both = POLICY + "  - name: purge\n    due: retain_until\n    action: purge\n"
    assert [p.name for p in bound_policies(conn, write_policy(tmp_path / "both", both))] == [
        "people"
    ]
    purge_only = POLICY.replace("action: archive", "action: purge")
    with pytest.raises(PolicyError, match="references itself"):
        bound_policies(conn, write_policy(tmp_path / "purge", purge_only))


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_a_deadlock_or_serialization_failure_is_retried_later(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path, sqlstate: str
) -> None:
    conn.execute(
        "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz);"
        "INSERT INTO people VALUES (1, '2001-01-01');"
        "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$BEGIN RAISE EXCEPTION 'contention' USING ERRCODE = '{sqlstate}'; END$$;"
        "CREATE TRIGGER boom BEFORE DELETE ON people FOR EACH ROW EXECUTE FUNCTION boom()"
    )
    config, _ = _settings(db_url, tmp_path, POLICY + "    triggers: [boom]\n")
    report = run(conn, config, at=date(2025, 1, 1))
    assert report.phases[0].skipped_batches == 1 and report.phases[0].error is None
    assert conn.execute("SELECT count(*) FROM people").fetchone() == (1,)


def test_files_restored_to_a_folder_are_described_by_their_manifest(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    """The exported manifest names the files beside it, with their rows and SHA-256, and this
    subject only; a path that is not a folder is a clear error."""
    ddl = (
        "CREATE TABLE people (id int PRIMARY KEY, last_visit timestamptz);"
        "CREATE TABLE notes (note_id int PRIMARY KEY, person_id int, body text);"
    )
    rows = (
        "INSERT INTO people VALUES (1, '2001-01-01'), (2, '2001-01-01');"
        "INSERT INTO notes VALUES (10, 1, 'a'), (11, 2, 'b'), (12, 1, 'c')"
    )
    config, keys = _archive(conn, db_url, tmp_path, ddl, rows, LINKED)
    record = _load(conn, config, keys, "1")
    folder = tmp_path / "out"
    restore.to_directory(conn, trail(conn, config), record, "1", folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["subjects"] == 1 and len(manifest["subject_digests"]) == 1
    described = {t["member"]: t for t in manifest["tables"]}
    assert set(described) == {"public.people.csv", "public.notes.csv"}
    for name, table in described.items():
        data = (folder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == table["sha256"]
        assert table["rows"] == len(list(csv.reader(io.StringIO(data.decode(), newline="")))) - 1
    assert described["public.notes.csv"]["rows"] == 2
    a_file = tmp_path / "a-file"
    a_file.write_text("x", encoding="utf-8")
    for wrong in (a_file, a_file / "below"):
        with pytest.raises(ArchiveError, match=r"not an empty folder|cannot write"):
            restore.to_directory(conn, trail(conn, config), record, "1", wrong)
