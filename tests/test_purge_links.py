"""Purge on a schema unlike the demo: text keys, a composite foreign key, a table without a
primary key, a link to a unique column that is not the key, plain and polymorphic links with
text ids. Every row of a due record goes, every other row stays."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from retention.engines import Connection
from retention.rows import records
from retention.store.schema import migrate
from tests.clock_helpers import policy
from tests.engine_helpers import run, write_policy
from tests.fix_engines import EngineDB, run_script

PG_SCHEMA = """
CREATE TABLE persons (code text PRIMARY KEY, nir varchar(15) UNIQUE, seen date NOT NULL);
CREATE TABLE stays (
    person_code text NOT NULL REFERENCES persons, n integer NOT NULL,
    PRIMARY KEY (person_code, n)
);
CREATE TABLE acts (  -- no primary key, composite foreign key
    person_code text NOT NULL, stay_n integer NOT NULL, label text,
    FOREIGN KEY (person_code, stay_n) REFERENCES stays
);
CREATE INDEX ON acts (person_code, stay_n);
CREATE TABLE identities (id serial PRIMARY KEY, nir varchar(15) REFERENCES persons (nir));
CREATE INDEX ON identities (nir);
CREATE TABLE mails (id bigserial PRIMARY KEY, owner text);  -- plain link, no foreign key
CREATE INDEX ON mails (owner);
CREATE TABLE notes (id serial PRIMARY KEY, object_class text, object_id text);
CREATE INDEX ON notes (object_class, object_id);
"""
# the same tables in MariaDB's DDL (a key of type TEXT needs a length there: VARCHAR)
MARIADB_SCHEMA = """
CREATE TABLE persons (code varchar(20) PRIMARY KEY, nir varchar(15) UNIQUE, seen date NOT NULL);
CREATE TABLE stays (
    person_code varchar(20) NOT NULL, n integer NOT NULL,
    PRIMARY KEY (person_code, n), FOREIGN KEY (person_code) REFERENCES persons (code)
);
CREATE TABLE acts (
    person_code varchar(20) NOT NULL, stay_n integer NOT NULL, label text,
    KEY (person_code, stay_n),
    FOREIGN KEY (person_code, stay_n) REFERENCES stays (person_code, n)
);
CREATE TABLE identities (
    id int AUTO_INCREMENT PRIMARY KEY, nir varchar(15), KEY (nir),
    FOREIGN KEY (nir) REFERENCES persons (nir)
);
CREATE TABLE mails (id bigint AUTO_INCREMENT PRIMARY KEY, owner varchar(20), KEY (owner));
CREATE TABLE notes (
    id int AUTO_INCREMENT PRIMARY KEY, object_class varchar(20), object_id varchar(20),
    KEY (object_class, object_id)
);
"""
SCHEMA = {"postgresql": PG_SCHEMA, "mariadb": MARIADB_SCHEMA}


def _policy(name: str, table: str, related: str = "", action: str = "purge") -> str:
    """A policy on `table` (key `code`, date column `seen`), due a year after `seen`."""
    return (
        f"name: {name}\nsubject: {{table: {table}, key: code}}\n{related}"
        "dates:\n  seen: {column: seen}\nretain_until: seen + 1 year\n"
        f"phases:\n  - name: destruction\n    due: seen + 1 year\n    action: {action}\n"
    )


POLICY = _policy(
    "unusual",
    "persons",
    """related:
  links:
    - table: mails
      column: owner
    - table: notes
      polymorphic:
        class_column: object_class
        id_column: object_id
        classes: {P: persons}
        unrelated_classes: {Q: "another kind of object: in no record"}
""",
)

OLD, NEW = date(2001, 1, 1), date.today()


def _populate(conn: Connection, engine: str) -> None:
    run_script(conn, SCHEMA[engine])
    people = [(f"p-{i:03d}", f"1{i:014d}", OLD if i % 3 else NEW) for i in range(1, 61)]
    for code, nir, seen in people:
        conn.execute("INSERT INTO persons VALUES (%s, %s, %s)", (code, nir, seen))
        for n in (1, 2):
            conn.execute("INSERT INTO stays VALUES (%s, %s)", (code, n))
            conn.execute("INSERT INTO acts VALUES (%s, %s, 'x'), (%s, %s, 'y')", (code, n) * 2)
        conn.execute("INSERT INTO identities (nir) VALUES (%s)", (nir,))
        conn.execute("INSERT INTO mails (owner) VALUES (%s), (%s)", (code, code))
        conn.execute("INSERT INTO notes (object_class, object_id) VALUES ('P', %s)", (code,))
        # same id, another class: not a member of that person's record
        conn.execute("INSERT INTO notes (object_class, object_id) VALUES ('Q', %s)", (code,))
    conn.execute("INSERT INTO mails (owner) VALUES (NULL), ('nobody')")


def _rows(conn: Connection) -> dict[str, set[tuple[Any, ...]]]:
    queries = {
        "persons": "SELECT code FROM persons",
        "stays": "SELECT person_code, n FROM stays",
        "acts": "SELECT person_code, stay_n, label FROM acts",
        "identities": "SELECT nir FROM identities",
        "mails": "SELECT owner FROM mails",
        "notes": "SELECT object_class, object_id FROM notes",
    }
    return {t: {tuple(r) for r in conn.execute(q)} for t, q in queries.items()}


def test_purge_follows_every_kind_of_link(engine_db: EngineDB, engine: str, tmp_path: Path) -> None:
    conn = engine_db.conn
    _populate(conn, engine)
    folder = write_policy(tmp_path / "policies", POLICY)
    before = _rows(conn)
    due = {c for (c,) in conn.execute("SELECT code FROM persons WHERE seen = %s", (OLD,))}
    nirs = {n for (n,) in conn.execute("SELECT nir FROM persons WHERE seen = %s", (OLD,))}
    assert len(due) == 40

    report = run(conn, engine_db.settings(folder, batch_size=7), only="unusual")

    assert report.outcome == "completed"
    assert report.phases[0].acted == 40
    after = _rows(conn)
    expected = {
        "persons": {r for r in before["persons"] if r[0] not in due},
        "stays": {r for r in before["stays"] if r[0] not in due},
        "acts": {r for r in before["acts"] if r[0] not in due},
        "identities": {r for r in before["identities"] if r[0] not in nirs},
        "mails": {r for r in before["mails"] if r[0] not in due},
        "notes": {r for r in before["notes"] if not (r[0] == "P" and r[1] in due)},
    }
    assert after == expected
    assert report.phases[0].rows == {
        engine_db.table("persons"): 40,
        engine_db.table("stays"): 80,
        engine_db.table("acts"): 160,
        engine_db.table("identities"): 40,
        engine_db.table("mails"): 80,
        engine_db.table("notes"): 40,
    }


PG_NARROW = """
CREATE TABLE people (code varchar(20) PRIMARY KEY, seen date NOT NULL);
CREATE TABLE tags (id serial PRIMARY KEY, code varchar(12) REFERENCES people (code));
CREATE INDEX ON tags (code);
CREATE TABLE fixed (code char(8) PRIMARY KEY, seen date NOT NULL);
CREATE TABLE fixed_visits (id serial PRIMARY KEY, code char(8) NOT NULL REFERENCES fixed);
CREATE INDEX ON fixed_visits (code);
"""
MARIADB_NARROW = """
CREATE TABLE people (code varchar(20) PRIMARY KEY, seen date NOT NULL);
CREATE TABLE tags (
    id int AUTO_INCREMENT PRIMARY KEY, code varchar(12), KEY (code),
    FOREIGN KEY (code) REFERENCES people (code)
);
CREATE TABLE fixed (code char(8) PRIMARY KEY, seen date NOT NULL);
CREATE TABLE fixed_visits (
    id int AUTO_INCREMENT PRIMARY KEY, code char(8) NOT NULL, KEY (code),
    FOREIGN KEY (code) REFERENCES fixed (code)
);
"""
NARROW = {"postgresql": PG_NARROW, "mariadb": MARIADB_NARROW}
# a char(8) value as read: PostgreSQL keeps its padding, MariaDB strips it on reading
PADDED = {"postgresql": "CD      ", "mariadb": "CD"}

NARROW_POLICIES = {
    "people.yaml": _policy("people", "people"),
    "fixed.yaml": _policy("fixed", "fixed"),
}


def test_link_values_are_compared_as_the_columns_are(
    engine_db: EngineDB, engine: str, tmp_path: Path
) -> None:
    """A due key longer than the child column must not match another subject's rows once cut
    to the child's length; char(n) keys (space-padded) are locked and purged."""
    conn = engine_db.conn
    run_script(conn, NARROW[engine])
    conn.execute(
        "INSERT INTO people VALUES ('ABCDEFGHIJKL', %s), ('ABCDEFGHIJKLMNOP', %s)", (NEW, OLD)
    )
    conn.execute("INSERT INTO tags (code) VALUES ('ABCDEFGHIJKL')")  # the kept person's tag
    conn.execute("INSERT INTO fixed VALUES ('AB', %s), ('CD', %s)", (OLD, NEW))
    conn.execute("INSERT INTO fixed_visits (code) VALUES ('AB'), ('AB'), ('CD')")
    folder = tmp_path / "policies"
    for name, text in NARROW_POLICIES.items():
        write_policy(folder, text, name)

    report = run(conn, engine_db.settings(folder))

    assert report.outcome == "completed"
    acted = {p.policy: (p.acted, p.locked_elsewhere) for p in report.phases}
    assert acted == {"people": (1, 0), "fixed": (1, 0)}
    assert conn.execute("SELECT code FROM people").fetchall() == [("ABCDEFGHIJKL",)]
    assert conn.execute("SELECT code FROM tags").fetchall() == [("ABCDEFGHIJKL",)]
    assert conn.execute("SELECT code FROM fixed").fetchall() == [(PADDED[engine],)]
    assert conn.execute("SELECT code FROM fixed_visits").fetchall() == [(PADDED[engine],)]


def test_a_stay_moved_to_another_patient_during_the_batch_rolls_it_back(
    engine_demo: EngineDB,
) -> None:
    """The batch deletes children through the link values it read first. If another
    transaction re-attaches a stay to another patient in between (a patient merge), the stay's
    prescriptions must not be deleted with the due patient's record: the batch fails whole."""
    demo_conn = engine_demo.conn
    migrate(demo_conn, engine_demo.tool_schema)
    bound = policy(demo_conn, "dossier-medical")
    row = demo_conn.execute(
        "SELECT s.patient_id, s.sejour_id FROM sejours AS s JOIN prescriptions AS p "
        "ON p.object_class = 'CSejour' AND p.object_id = s.sejour_id LIMIT 1"
    ).fetchone()
    assert row is not None
    patient, stay = row
    other = demo_conn.execute(
        "SELECT patient_id FROM patients WHERE patient_id <> %s LIMIT 1", (patient,)
    ).fetchone()[0]
    with demo_conn.transaction(force_rollback=True):
        found = records.collect(demo_conn, bound, [patient])
        # what the other transaction does (here in the same one, for determinism)
        demo_conn.execute("UPDATE sejours SET patient_id = %s WHERE sejour_id = %s", (other, stay))
        with pytest.raises(records.RecordsChangedError, match=r"sejours: .* read at the start"):
            records.delete(demo_conn, found)


def test_subjects_removed_by_an_earlier_phase_are_reported_as_gone(
    engine_db: EngineDB, engine: str, tmp_path: Path
) -> None:
    """Both policies' due subjects are planned before anything runs; the purge of the first
    removes the second's: they are counted as gone, not as locked by the application."""
    conn = engine_db.conn
    key = {"postgresql": "text", "mariadb": "varchar(20)"}[engine]
    conn.execute(f"CREATE TABLE clients (code {key} PRIMARY KEY, seen date NOT NULL, tel text)")
    conn.execute(
        "INSERT INTO clients VALUES ('a', %s, '01'), ('b', %s, '02'), ('c', %s, '03')",
        (OLD, OLD, NEW),
    )
    folder = tmp_path / "policies"
    write_policy(folder, _policy("a-purge", "clients"), "a.yaml")
    write_policy(
        folder, _policy("b-erase", "clients", action="erase\n    columns: [tel]"), "b.yaml"
    )

    report = run(conn, engine_db.settings(folder))

    assert report.outcome == "completed"
    counts = {p.policy: (p.proposed, p.acted, p.gone, p.locked_elsewhere) for p in report.phases}
    assert counts == {"a-purge": (2, 2, 0, 0), "b-erase": (2, 0, 2, 0)}
    assert conn.execute("SELECT code, tel FROM clients").fetchall() == [("c", "03")]
