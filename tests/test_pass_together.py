"""The column phases of one pass applied together (retention.actions.together): what each phase
reports and leaves must be what applying them one after the other reports and leaves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.actions.pseudonymize import pseudonym
from retention.db import connect
from retention.engines import sql
from retention.keys import load_key
from retention.settings import Settings
from tests.engine_helpers import run, settings, write_policy
from tests.fix_engines import EngineDB, json_value, run_script

HEAD = """\
name: p
subject: {table: people, key: id}
dates:
  seen: {column: seen}
retain_until: seen + 1 year
phases:
  - name: first
    due: seen + 1 year
"""
SECOND = """\
  - name: second
    due: seen + 1 year
"""


def _policy(tmp_path: Path, first: str, second: str) -> Path:
    return write_policy(tmp_path / "policies", HEAD + first + SECOND + second)


def _audit_rows(db: EngineDB) -> list[tuple[Any, ...]]:
    query = sql.SQL(  # `rows` is a keyword of MariaDB: quoted
        "SELECT phase, subjects, {} FROM {} WHERE event = 'batch' ORDER BY seq"
    ).format(sql.Identifier("rows"), db.tool("audit"))
    return [(phase, subjects, json_value(rows)) for phase, subjects, rows in db.conn.execute(query)]


def test_rows_a_trigger_keeps_unchanged_are_not_counted(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path
) -> None:
    conn.execute(
        "CREATE TABLE people (id int PRIMARY KEY, seen date NOT NULL, tel text, born date, "
        "frozen boolean NOT NULL DEFAULT false);"
        "INSERT INTO people VALUES (1, '2000-01-01', '0612', '1975-06-15', false), "
        "(2, '2000-01-01', '0613', '1975-06-15', true);"
        "CREATE FUNCTION keep_frozen() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF OLD.frozen THEN RETURN NULL; END IF; RETURN NEW; END $$;"
        "CREATE TRIGGER keep_frozen BEFORE UPDATE ON people FOR EACH ROW "
        "EXECUTE FUNCTION keep_frozen();"
    )
    folder = _policy(
        tmp_path,
        "    action: generalize\n    columns: [{column: born, to: year}]\n",
        "    action: erase\n    columns: [tel]\n",
    )
    report = run(conn, settings(db_url, folder))
    assert report.outcome == "completed"
    assert [dict(p.rows) for p in report.phases] == [{"public.people": 1}, {"public.people": 1}]
    assert conn.execute("SELECT id, born::text, tel FROM people ORDER BY id").fetchall() == [
        (1, "1975-01-01", None),
        (2, "1975-06-15", "0613"),
    ]


def test_a_phase_whose_subjects_are_all_locked_elsewhere_reports_no_rows(
    engine: str, engine_db: EngineDB, tmp_path: Path
) -> None:
    conn = engine_db.conn
    run_script(
        conn,
        "CREATE TABLE people (id int PRIMARY KEY, seen date NOT NULL, name text, tel text);"
        "INSERT INTO people VALUES (1, '2000-01-01', 'Dupont', '0612');",
    )
    folder = _policy(
        tmp_path,
        "    action: pseudonymize\n    columns: [name]\n",
        "    action: erase\n    columns: [tel]\n",
    )
    if engine == "mariadb":  # a plan that waited for the row would fail in 3 s, not 50
        conn.execute("SET SESSION innodb_lock_wait_timeout = 3")
    with (
        connect(Settings(), url=engine_db.url) as other,
        other.transaction(force_rollback=True),
    ):
        other.execute("SELECT * FROM people FOR UPDATE").fetchall()
        report = run(conn, engine_db.settings(folder))
    assert [(p.acted, p.locked_elsewhere, dict(p.rows)) for p in report.phases] == [
        (0, 1, {}),
        (0, 1, {}),
    ]
    assert [rows for _, _, rows in _audit_rows(engine_db)] == [{}, {}]


def test_staged_flags_do_not_clash_with_the_tables_columns(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    # the staging table holds the primary key, the pseudonyms and one flag per phase
    conn = engine_db.conn
    run_script(
        conn,
        "CREATE TABLE people (id int PRIMARY KEY, seen date NOT NULL, retention_flag_0 text, "
        "tel text); INSERT INTO people VALUES (1, '2000-01-01', 'Dupont', '0612');",
    )
    folder = _policy(
        tmp_path,
        "    action: pseudonymize\n    columns: [retention_flag_0]\n",
        "    action: erase\n    columns: [tel]\n",
    )
    report = run(conn, engine_db.settings(folder))
    assert report.outcome == "completed"
    key = load_key(engine_db.settings().pseudonym_key, "pseudonym_key")
    row = conn.execute("SELECT retention_flag_0, tel FROM people").fetchone()
    assert row == (pseudonym(key, "Dupont"), None)


def test_a_column_two_phases_change_gets_the_last_phases_value_on_every_row(
    engine_db: EngineDB, engine: str, tmp_path: Path
) -> None:
    # letter 10 belongs to two subjects, one of them (2) due for the erasure only (its note is
    # already the erasure's value); applied one after the other, every due note ends erased
    conn = engine_db.conn
    letters = {
        "postgresql": "CREATE TABLE letters (id int PRIMARY KEY, sender int REFERENCES people, "
        "recipient int REFERENCES people, note text);"
        "CREATE INDEX ON letters (sender); CREATE INDEX ON letters (recipient);",
        "mariadb": "CREATE TABLE letters (id int PRIMARY KEY, sender int, recipient int, "
        "note text, KEY (sender), KEY (recipient), FOREIGN KEY (sender) REFERENCES people (id), "
        "FOREIGN KEY (recipient) REFERENCES people (id));",
    }
    run_script(
        conn,
        "CREATE TABLE people (id int PRIMARY KEY, seen date NOT NULL);"
        + letters[engine]
        + "INSERT INTO people VALUES (1, '2000-01-01'), (2, '2000-01-01');"
        "INSERT INTO letters VALUES (10, 1, 2, 'ANONYME'), (11, 1, NULL, 'secret');",
    )
    folder = _policy(
        tmp_path,
        "    action: pseudonymize\n    columns: [letters.note]\n",
        "    action: erase\n    columns: [{column: letters.note, value: ANONYME}]\n",
    )
    report = run(conn, engine_db.settings(folder))
    assert report.outcome == "completed"
    notes = conn.execute("SELECT id, note FROM letters ORDER BY id").fetchall()
    assert notes == [(10, "ANONYME"), (11, "ANONYME")]
    letters_table = engine_db.table("letters")
    assert [dict(p.rows) for p in report.phases] == [{letters_table: 2}, {letters_table: 2}]


@pytest.mark.mariadb_only("a TEXT column with a default", params=["mariadb"])
def test_a_default_with_a_percent_sign(engine_db: EngineDB, tmp_path: Path) -> None:
    conn = engine_db.conn
    run_script(
        conn,
        "CREATE TABLE people (id int PRIMARY KEY, seen date NOT NULL, name text, "
        "rate text NOT NULL DEFAULT '0%', note text NOT NULL DEFAULT '100%');"
        "INSERT INTO people VALUES (1, '2000-01-01', 'Dupont', '12%', 'x'), "
        "(2, '2000-01-01', NULL, '15%', 'y')",
    )
    folder = _policy(
        tmp_path,
        "    action: pseudonymize\n    columns: [name]\n",
        "    action: erase\n    columns: [rate]\n  - name: third\n    due: seen + 2 years\n"
        "    action: erase\n    columns: [note]\n",
    )
    report = run(conn, engine_db.settings(folder))
    assert report.outcome == "completed", [p.error for p in report.phases]
    # person 2 has no name: due for the erasure only; `third` is a pass of its own
    assert [p.acted for p in report.phases] == [1, 2, 2]
    assert conn.execute("SELECT rate, note FROM people ORDER BY id").fetchall() == [
        ("0%", "100%"),
        ("0%", "100%"),
    ]
    again = run(conn, engine_db.settings(folder))
    assert sum(p.acted for p in again.phases) == 0
