"""The actions on MariaDB, through the same code as on PostgreSQL, ending in the same state.

Each test builds one small schema on both engines (InnoDB on MariaDB; declared foreign keys two
levels deep, a table linked by a plain column without a foreign key, a polymorphic table),
walks the same due subjects in batches through a due table as the plan leaves it
(`engine.due_keys`), and in each batch's transaction locks the subjects (`FOR UPDATE SKIP
LOCKED`), finds those gone, re-checks them with the clock on the engine (`_still_due`, whose
due date aggregates over the polymorphic table) and applies the phase with the action code
(`engine.batch`), then compares every table of both databases.

Whole batches (`run_batch`: the time limits, the lock, the re-check, the action and the audit
entry in one transaction) run on MariaDB too, the tool's `audit` and `locks` tables created by
the test in a database of their own (the tool's schema on MariaDB, branch mariadb-schema, is
not on `main` yet). Finding the scrub ledger (`store.ledger.find_ledger`, `to_regclass`) is
still PostgreSQL's SQL: the tests create and attach the ledger themselves.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from pydantic import SecretStr

from retention.actions import Batch
from retention.audit.seal import load_signer
from retention.audit.trail import AuditTrail
from retention.catalog.introspect import read_catalog
from retention.engine import due_keys
from retention.engine.batch import BatchContext, _apply, _gone, _lock, _still_due, run_batch
from retention.engines import Connection, engine_of, errors, sql
from retention.engines.mariadb.dialect import NoRowKeyError
from retention.keys import load_key
from retention.policy.bind import bind_policy
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.policy.load import load_policies
from retention.rows.records import RecordsChangedError
from retention.settings import Settings
from retention.store.ledger import Ledger, analyser_fingerprint
from retention.store.schema import migrate
from tests.engine_helpers import AUDIT_KEY, PSEUDONYM_KEY, write_policy
from tests.key_helpers import AUDIT_SIGNING_KEY

SUBJECTS = 120  # MariaDB's SKIP LOCKED misses rows of tiny tables (docs/ENGINES.md, 2.7)
OLD = date(2000, 1, 1)
BATCH = 25

# the same schema on both engines: types each engine spells its way
TYPES = {
    "postgresql": {"datetime": "timestamp", "engine": ""},
    "mariadb": {"datetime": "datetime", "engine": " ENGINE=InnoDB"},
}
SCHEMA = (
    """CREATE TABLE people (
        id int PRIMARY KEY, seen date NOT NULL, name varchar(40), short varchar(12),
        born date, stamp {datetime}, born_txt varchar(12), cp varchar(6), weight decimal(6,1),
        age int, required varchar(20) NOT NULL DEFAULT 'inconnu', mandatory varchar(20) NOT NULL
    ){engine}""",
    """CREATE TABLE visits (
        id int PRIMARY KEY, person_id int NOT NULL, tel varchar(20), caller varchar(40),
        remark text, FOREIGN KEY (person_id) REFERENCES people (id)
    ){engine}""",
    "CREATE INDEX visits_person ON visits (person_id)",
    """CREATE TABLE acts (
        id int PRIMARY KEY, visit_id int NOT NULL, label varchar(40),
        FOREIGN KEY (visit_id) REFERENCES visits (id)
    ){engine}""",
    "CREATE INDEX acts_visit ON acts (visit_id)",
    # linked by a plain column, no foreign key (the policy declares the link)
    "CREATE TABLE mails (id int PRIMARY KEY, owner int, body varchar(200)){engine}",
    "CREATE INDEX mails_owner ON mails (owner)",
    # polymorphic: a class column and an id column
    """CREATE TABLE notes (
        id int PRIMARY KEY, object_class varchar(20) NOT NULL, object_id int NOT NULL,
        body varchar(200), written date NOT NULL
    ){engine}""",
    "CREATE INDEX notes_object ON notes (object_class, object_id)",
)

REMARKS = (
    "Appeler M. Jean Dupont au 06 12 34 56 78 avant la consultation.",
    "Patiente vue en consultation, tension normale.",
    "Écrire à marie.martin@example.fr pour le compte rendu.",
)


def _people() -> Iterator[tuple[Any, ...]]:
    """Subjects 1..SUBJECTS: the odd ones seen in 2000 (due), the even ones today."""
    for i in range(1, SUBJECTS + 1):
        yield (
            i,
            OLD if i % 2 else date.today(),
            f"Dupont {i}" if i % 5 else None,
            f"Martin{i}",
            date(1950 + i % 40, 1 + i % 12, 1 + i % 28),
            datetime(2001, 1 + i % 12, 1 + i % 28, i % 24, 30),
            # a final line feed: no date, no postal code (PCRE's `$` would take them)
            "1971-05-05\n"
            if i == 21
            else f"19{50 + i % 40}-0{1 + i % 9}-1{i % 10}"
            if i % 7
            else "inconnue",
            "75012\n" if i == 21 else ("75012", "20090", "20213", "97411", "6900")[i % 5],
            Decimal(f"{60 + i % 30}.{i % 10}"),
            20 + i % 60,
            f"r{i}",
            f"m{i}",
        )


def _populate(conn: Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement.format(**TYPES[engine_of(conn).name]))
    with conn.transaction():
        for row in _people():
            conn.execute(
                "INSERT INTO people VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                row,
            )
            i = row[0]
            for n in (1, 2):
                visit = 10 * i + n
                conn.execute(
                    "INSERT INTO visits VALUES (%s, %s, %s, %s, %s)",
                    (visit, i, f"06 00 00 {i:02d} 0{n}", f"Caller {i}", REMARKS[(i + n) % 3]),
                )
                conn.execute("INSERT INTO acts VALUES (%s, %s, %s)", (visit, visit, f"act {visit}"))
            conn.execute("INSERT INTO mails VALUES (%s, %s, %s)", (i, i, f"Bonjour {i}"))
            conn.execute(
                "INSERT INTO notes VALUES (%s, 'CPerson', %s, %s, %s)",
                (i, i, f"Note sur {i}", OLD),
            )
            # the same id under another class: in no record (written today: were it counted,
            # no subject would be due)
            conn.execute(
                "INSERT INTO notes VALUES (%s, 'COther', %s, %s, %s)",
                (1000 + i, i, f"Autre {i}", date.today()),
            )
        conn.execute("INSERT INTO mails VALUES (9999, NULL, 'sans destinataire')")


POLICY = """\
name: {name}
subject: {{table: people, key: id}}
related:
  links:
    - {{table: mails, column: owner}}
    - table: notes
      polymorphic:
        class_column: object_class
        id_column: object_id
        classes: {{CPerson: people}}
        unrelated_classes: {{COther: "another kind of object"}}
dates:
  seen: {{column: seen}}
  noted: {{latest: written, over: notes}}
retain_until: seen + 1 year
phases:
{phases}"""


def _phase(name: str, action: str, columns: str = "") -> str:
    # the clock's aggregate walks the polymorphic link (its class filter) on both engines
    text = f"  - name: {name}\n    due: greatest(seen, noted) + 1 year\n    action: {action}\n"
    return text + (f"    columns: {columns}\n" if columns else "")


def _bind(
    conn: Connection, folder: Path, *, tool_schema: str = "retention", ledger: bool = False
) -> BoundPolicy:
    """The policy of `folder` bound to the connection's catalogue (with the scrub ledger of
    `tool_schema` when `ledger`: `find_ledger` is PostgreSQL's SQL)."""
    policy, problems = bind_policy(
        load_policies(folder)[0], read_catalog(conn, tool_schema=tool_schema)
    )
    assert policy is not None, [p.render() for p in problems]
    if not ledger:
        return policy
    found = Ledger(tool_schema, analyser_fingerprint())
    phases = tuple(
        replace(p, columns=tuple(replace(c, ledger=found) for c in p.columns))
        for p in policy.phases
    )
    return replace(policy, phases=phases)


def _due_table(conn: Connection, policy: BoundPolicy) -> str:
    """The pass's due table as the plan leaves it (retention.plan.compute): every old subject,
    one window, due for the pass's phases."""
    name = "retention_due_0"
    dialect = engine_of(conn).dialect
    table = dialect.temporary(name)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    conn.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} (k {}, w int, o date, p0 boolean, p1 boolean)").format(
            sql.Identifier(name), sql.SQL(policy.key.type)
        )
    )
    due = [row[0] for row in _people() if row[1] == OLD]
    with conn.transaction():
        for k in due:
            conn.execute(
                sql.SQL("INSERT INTO {} VALUES (%s, 0, %s, TRUE, TRUE)").format(table),
                (k, date(2001, 1, 1)),
            )
    return name


def _run(conn: Connection, policy: BoundPolicy, phases: Sequence[str]) -> dict[str, int]:
    """Every due subject, batch by batch: locked, the gone ones found, the phases applied
    (together when they are column phases of one pass); rows changed per table, summed."""
    chosen = [p for p in policy.phases if p.name in phases]
    key = load_key(SecretStr(PSEUDONYM_KEY), "pseudonym_key")
    table = _due_table(conn, policy)
    totals: dict[str, int] = {}
    for rows in due_keys.batches(conn, table, len(chosen), BATCH, threading.Event()):
        keys, _ = due_keys.keys_and_flags(rows, range(len(chosen)))
        with conn.transaction():
            locked = _lock(conn, policy, keys)
            # nobody else holds them; a purged subject is gone (the second run of a purge)
            assert sorted([*locked, *_gone(conn, policy, keys, locked)]) == sorted(keys)
            # the locked re-check, by the clock on the engine (as run_batch does)
            due = list(_still_due(conn, _context(policy, chosen[0]), locked))
            assert due == locked
            done = _apply(conn, [Batch(policy, phase, due, key) for phase in chosen])
        for counts in _by_table(done):
            for name, n in counts.items():
                totals[name] = totals.get(name, 0) + n
    return totals


def _context(policy: BoundPolicy, phase: BoundPhase) -> BatchContext:
    """What the batch's re-check reads (no holds; the trail is never written here)."""
    trail = AuditTrail(
        "retention",
        load_key(SecretStr(AUDIT_KEY), "audit_key"),
        {},
        load_signer(SecretStr(AUDIT_SIGNING_KEY)),
    )
    return BatchContext(policy, phase, date.today(), None, Settings(), trail, uuid4())


def _by_table(done: list[dict[str, int]]) -> list[dict[str, int]]:
    """Rows per table name: the schema is `public` on PostgreSQL, the database on MariaDB."""
    return [{label.split(".", 1)[1]: n for label, n in counts.items()} for counts in done]


def _state(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    return {
        table: [tuple(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
        for table in ("people", "visits", "acts", "mails", "notes")
    }


@pytest.fixture
def engines(conn: Connection, mariadb_conn: Connection) -> tuple[Connection, Connection]:
    """The same schema and rows on PostgreSQL and on MariaDB."""
    for each in (conn, mariadb_conn):
        _populate(each)
    return conn, mariadb_conn


def _both(
    engines: tuple[Connection, Connection], tmp_path: Path, phases: str, **bind: Any
) -> list[dict[str, int]]:
    """Run the policy's phases on both engines, twice; the second run changes nothing."""
    folder = write_policy(tmp_path / "policy", POLICY.format(name="p", phases=phases))
    results = []
    for each in engines:
        policy = _bind(each, folder, **bind.get(engine_of(each).name, {}))
        names = [p.name for p in policy.phases]
        results.append(_run(each, policy, names))
        assert sum(_run(each, policy, names).values()) == 0, engine_of(each).name
    assert _state(engines[1]) == _state(engines[0])
    return results


def test_erase_ends_as_on_postgresql(
    engines: tuple[Connection, Connection], tmp_path: Path
) -> None:
    columns = (
        "[name, required, {column: mandatory, value: '-'}, visits.tel, mails.body, notes.body]"
    )
    postgresql, mariadb = _both(engines, tmp_path, _phase("erase", "erase", columns))
    assert mariadb == postgresql
    assert postgresql["visits"] == SUBJECTS  # two visits of each of the 60 due subjects
    people = _state(engines[1])["people"]
    assert {row[2] for row in people if row[1] == OLD} == {None}
    assert {(row[10], row[11]) for row in people if row[1] == OLD} == {("inconnu", "-")}
    notes = _state(engines[1])["notes"]
    assert all(row[3] is not None for row in notes if row[1] == "COther")


def test_generalize_ends_as_on_postgresql(
    engines: tuple[Connection, Connection], tmp_path: Path
) -> None:
    columns = (
        "[{column: born, to: year}, {column: stamp, to: month}, {column: born_txt, to: year}, "
        "{column: cp, to: department}, {column: weight, to: range, width: 10}, "
        "{column: age, to: range, width: 5}]"
    )
    postgresql, mariadb = _both(engines, tmp_path, _phase("gen", "generalize", columns))
    assert mariadb == postgresql == {"people": SUBJECTS // 2}
    people = {row[0]: row for row in _state(engines[1])["people"]}
    assert people[1][4:] == (
        date(1951, 1, 1),
        datetime(2001, 2, 1),
        "1951-00-00",
        "2A",  # Corsica, 20090
        Decimal("60.0"),  # 61.1
        20,  # 21
        "r1",
        "m1",
    )
    assert people[7][6:8] == ("inconnue", "2B")  # not a date: left as it is; 20213
    assert (people[3][7], people[9][7], people[15][7]) == ("974", "6900", "75")
    assert people[21][6:8] == ("1971-05-05\n", "75012\n")


def test_pseudonymize_ends_as_on_postgresql(
    engines: tuple[Connection, Connection], tmp_path: Path
) -> None:
    columns = "[name, short, visits.caller, notes.body]"
    postgresql, mariadb = _both(engines, tmp_path, _phase("pseudo", "pseudonymize", columns))
    assert mariadb == postgresql
    people = _state(engines[1])["people"]
    assert all(len(row[3]) == 12 and row[3].startswith("PSN-") for row in people if row[1] == OLD)


def test_column_phases_of_a_pass_applied_together_end_as_on_postgresql(
    engines: tuple[Connection, Connection], tmp_path: Path
) -> None:
    """Pseudonymize and erase in one pass: one read, one staged write, one UPDATE per table;
    MariaDB counts each phase's rows before the UPDATE (it has no UPDATE ... RETURNING)."""
    phases = _phase("pseudo", "pseudonymize", "[name, visits.caller]") + _phase(
        "erase", "erase", "[short, born, visits.tel]"
    )
    postgresql, mariadb = _both(engines, tmp_path, phases)
    assert mariadb == postgresql
    assert postgresql["visits"] == 2 * SUBJECTS  # both phases, each visit of a due subject


def test_scrub_ends_as_on_postgresql_and_records_clean_texts(
    engines: tuple[Connection, Connection], tmp_path: Path, mariadb_url: str
) -> None:
    postgresql_conn, mariadb_conn = engines
    migrate(postgresql_conn, "retention")
    tool = mariadb_url.rsplit("/", 1)[1] + "_tool"
    mariadb_conn.execute(f"CREATE DATABASE `{tool}`")
    try:
        # the ledger as the MariaDB migration (mariadb-schema) creates it
        mariadb_conn.execute(
            f"CREATE TABLE `{tool}`.scrubbed (target VARCHAR(194) NOT NULL, analyser VARCHAR(64) "
            "NOT NULL, digest VARBINARY(32) NOT NULL, recorded_at DATETIME(6) NOT NULL DEFAULT "
            "(UTC_TIMESTAMP(6)), PRIMARY KEY (target, analyser, digest)) ENGINE=InnoDB "
            "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        )
        bind = {"postgresql": {"ledger": True}, "mariadb": {"tool_schema": tool, "ledger": True}}
        postgresql, mariadb = _both(
            engines, tmp_path, _phase("scrub", "scrub", "[visits.remark]"), **bind
        )
        assert mariadb == postgresql
        remarks = {row[4] for row in _state(mariadb_conn)["visits"] if row[1] % 2}
        assert not any("Dupont" in r or "06 12" in r or "@" in r for r in remarks)
        assert REMARKS[1] in remarks  # nothing personal in it: left as it was
        # the texts a run left clean (the second run: those the first scrubbed), by digest
        clean = {hashlib.sha256(r.encode()).digest() for r in remarks}
        assert len(clean) == 3
        for found in (
            mariadb_conn.execute(f"SELECT digest FROM `{tool}`.scrubbed"),
            postgresql_conn.execute("SELECT digest FROM retention.scrubbed"),
        ):
            assert {bytes(row[0]) for row in found} == clean
    finally:
        mariadb_conn.execute(f"DROP DATABASE IF EXISTS `{tool}`")


def test_purge_ends_as_on_postgresql(
    engines: tuple[Connection, Connection], tmp_path: Path
) -> None:
    postgresql, mariadb = _both(engines, tmp_path, _phase("purge", "purge"))
    assert mariadb == postgresql
    assert postgresql == {
        "acts": SUBJECTS,
        "visits": SUBJECTS,
        "mails": SUBJECTS // 2,
        "notes": SUBJECTS // 2,
        "people": SUBJECTS // 2,
    }
    state = _state(engines[1])
    assert len(state["notes"]) == SUBJECTS + SUBJECTS // 2  # the other class stays
    assert (9999, None, "sans destinataire") in state["mails"]


def test_a_purge_whose_record_changed_meanwhile_rolls_back_on_mariadb(
    mariadb_conn: Connection, tmp_path: Path
) -> None:
    """A visit moved to another subject between the batch's walk and its delete: the rows a
    table lost differ from those read, and the batch rolls back (RecordsChangedError)."""
    from retention.rows import records

    _populate(mariadb_conn)
    folder = write_policy(tmp_path / "p", POLICY.format(name="p", phases=_phase("purge", "purge")))
    policy = _bind(mariadb_conn, folder)
    with pytest.raises(RecordsChangedError), mariadb_conn.transaction():
        found = records.collect(mariadb_conn, policy, [1, 3])
        mariadb_conn.execute("UPDATE visits SET person_id = 2 WHERE id = 11")
        records.delete(mariadb_conn, found)
    assert mariadb_conn.execute("SELECT count(*) FROM people").fetchone()[0] == SUBJECTS


def test_subjects_locked_by_another_session_are_skipped_on_mariadb(
    mariadb_conn: Connection, mariadb_url: str, tmp_path: Path
) -> None:
    from retention.db import connect
    from retention.settings import Settings

    _populate(mariadb_conn)
    folder = write_policy(tmp_path / "p", POLICY.format(name="p", phases=_phase("purge", "purge")))
    policy = _bind(mariadb_conn, folder)
    with connect(Settings(), url=mariadb_url) as other, other.transaction():
        other.execute("SELECT id FROM people WHERE id IN (3, 5) FOR UPDATE").fetchall()
        with mariadb_conn.transaction():
            assert _lock(mariadb_conn, policy, [1, 3, 5, 7, 1000]) == [1, 7]
            assert _gone(mariadb_conn, policy, [1, 3, 5, 7, 1000], [1, 7]) == {1000}


def test_a_member_rows_lock_leaves_their_parents_free_on_mariadb(
    mariadb_conn: Connection, mariadb_url: str, tmp_path: Path
) -> None:
    """Pseudonymize reads a related table's member rows FOR UPDATE through a join to their
    keys: the rows of the tables the path goes through (visits, for acts) are not locked."""
    from retention.db import connect
    from retention.settings import Settings

    _populate(mariadb_conn)
    phases = _phase("pseudo", "pseudonymize", "[acts.label]")
    folder = write_policy(tmp_path / "p", POLICY.format(name="p", phases=phases))
    policy = _bind(mariadb_conn, folder)
    key = load_key(SecretStr(PSEUDONYM_KEY), "pseudonym_key")
    with connect(Settings(), url=mariadb_url) as other, mariadb_conn.transaction():
        done = _apply(mariadb_conn, [Batch(policy, policy.phases[0], [1], key)])
        assert _by_table(done) == [{"acts": 2}]
        with other.transaction():
            # a visit of subject 1: not locked by the batch
            row = other.execute("SELECT id FROM visits WHERE id = 11 FOR UPDATE NOWAIT")
            assert row.fetchall() == [(11,)]


def test_zero_dates_are_left_as_they_are_by_generalize_on_mariadb(
    mariadb_conn: Connection, tmp_path: Path
) -> None:
    _populate(mariadb_conn)
    mariadb_conn.execute("UPDATE people SET born = '0000-00-00' WHERE id = 1")
    mariadb_conn.execute("UPDATE people SET born = '1975-00-10' WHERE id = 3")
    phases = _phase("gen", "generalize", "[{column: born, to: year}]")
    folder = write_policy(tmp_path / "p", POLICY.format(name="p", phases=phases))
    _run(mariadb_conn, _bind(mariadb_conn, folder), ["gen"])
    born = dict(
        mariadb_conn.execute(
            "SELECT id, CAST(born AS CHAR) FROM people WHERE id IN (1, 3, 5) ORDER BY id"
        ).fetchall()
    )
    assert born == {1: "0000-00-00", 3: "1975-00-10", 5: "1955-01-01"}


def test_a_table_without_a_row_key_is_refused_clearly_on_mariadb(
    mariadb_conn: Connection,
) -> None:
    """`check` refuses such a table in a phase (policy.checks); the dialect refuses it too,
    should a caller reach it, rather than match rows it cannot tell apart."""
    mariadb_conn.execute("CREATE TABLE tags (person_id int NOT NULL, tag varchar(20))")
    table = read_catalog(mariadb_conn).find("tags")
    assert table is not None
    with pytest.raises(NoRowKeyError, match="tags has no primary key"):
        engine_of(mariadb_conn).dialect.row_ids(table)


def test_key_sets_of_text_keys_match_as_the_key_column_compares(mariadb_conn: Connection) -> None:
    """Text keys bound as one JSON parameter are compared with the key column's own character
    set and collation (latin1 here; a binary one tells case apart)."""
    from retention.engines.catalogue import Column, ColumnKind
    from retention.policy.expr import Params

    dialect = engine_of(mariadb_conn).dialect
    mariadb_conn.execute("CREATE TABLE l1 (code varchar(10) PRIMARY KEY) DEFAULT CHARSET=latin1")
    mariadb_conn.execute("CREATE TABLE bin (code varchar(10) COLLATE utf8mb4_bin PRIMARY KEY)")
    mariadb_conn.execute("INSERT INTO l1 VALUES ('Abc'), ('déf'), ('x')")
    mariadb_conn.execute("INSERT INTO bin VALUES ('Abc'), ('abc')")
    key = Column("code", "varchar(10)", "varchar", ColumnKind.TEXT, 10, True, None)
    for table, keys, expected in (
        ("l1", ["déf", "x", "déf"], [("déf",), ("x",)]),
        ("bin", ["abc"], [("abc",)]),
    ):
        params = Params(prefix="k")
        query = sql.SQL("SELECT code FROM {} WHERE {} ORDER BY code").format(
            sql.Identifier(table), dialect.in_keys(sql.Identifier("code"), params, keys, key)
        )
        assert mariadb_conn.execute(query, params.values).fetchall() == expected


def test_a_row_already_there_is_left_as_it_is_by_insert_missing(mariadb_conn: Connection) -> None:
    dialect = engine_of(mariadb_conn).dialect
    mariadb_conn.execute(
        "CREATE TABLE ledger (target varchar(10), n int, PRIMARY KEY (target), UNIQUE KEY (n))"
    )
    mariadb_conn.execute("INSERT INTO ledger VALUES ('a', 1)")
    for row in (("a", 2), ("b", 1), ("c", 3)):
        mariadb_conn.execute(
            dialect.insert_missing(
                sql.Identifier("ledger"), ["target", "n"], sql.SQL("SELECT %s, %s")
            ),
            row,
        )
    assert mariadb_conn.execute("SELECT * FROM ledger ORDER BY target").fetchall() == [
        ("a", 1),
        ("c", 3),
    ]


def test_temporary_tables_are_named_so_as_to_hide_no_table_on_mariadb() -> None:
    from retention.engines.mariadb.dialect import DIALECT

    with pytest.raises(ValueError, match="starts with 'retention_'"):
        DIALECT.temporary("people")


def test_pseudonyms_are_recognised_as_python_does_whatever_the_collation_on_mariadb(
    mariadb_conn: Connection,
) -> None:
    """`not_pseudonym` on MariaDB: case-insensitive and accent-insensitive collations (the
    default utf8mb4_general_ci) must not take `psn-abcdefgh` or `PSN-ABCDÉFGH` for pseudonyms."""
    from retention.actions.pseudonymize import is_pseudonym
    from retention.rows.values import not_pseudonym
    from tests.test_actions import PSEUDONYM_CANDIDATES

    mariadb_conn.execute(
        "CREATE TABLE v (i int PRIMARY KEY, ci varchar(40), l1 varchar(40) CHARACTER SET latin1, "
        "t text, c char(40))"
    )
    for i, value in enumerate(PSEUDONYM_CANDIDATES):
        mariadb_conn.execute("INSERT INTO v VALUES (%s, %s, %s, %s, %s)", (i, *[value] * 4))
    dialect = engine_of(mariadb_conn).dialect
    for column in ("ci", "l1", "t", "c"):
        query = sql.SQL("SELECT i, {} FROM v ORDER BY i").format(
            not_pseudonym(sql.Identifier(column), dialect=dialect)
        )
        got = [bool(row[1]) for row in mariadb_conn.execute(query)]
        # char(n) drops trailing spaces, and a final line feed is not one
        expected = [not is_pseudonym(v) for v in PSEUDONYM_CANDIDATES]
        assert got == expected, column


# -- whole batches (engine/batch.py run_batch) on MariaDB -------------------------------------

# the columns of the tool's `audit` table and its `locks` row that run_batch writes and locks
# (branch mariadb-schema's migrations 002 and 009, without their CHECKs and triggers)
TOOL_TABLES = (
    """CREATE TABLE {schema}.audit (
        seq BIGINT NOT NULL PRIMARY KEY, recorded_at DATETIME(6) NOT NULL, run_id CHAR(36),
        event TEXT NOT NULL, policy VARCHAR(64), policy_sha256 TEXT, phase TEXT, action TEXT,
        `rows` LONGTEXT NOT NULL, subjects INT NOT NULL DEFAULT 0,
        subject_digests LONGTEXT NOT NULL, key_id TEXT, actor LONGTEXT NOT NULL,
        outcome TEXT NOT NULL, detail LONGTEXT NOT NULL, prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL, sig_key TEXT, signature TEXT
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
    """CREATE TABLE {schema}.locks (name VARCHAR(64) NOT NULL PRIMARY KEY)
        ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin""",
    "INSERT INTO {schema}.locks (name) VALUES ('audit chain')",
)
LIMITS = ("innodb_lock_wait_timeout", "lock_wait_timeout", "max_statement_time")


@pytest.fixture
def tool_schema(mariadb_conn: Connection) -> Iterator[str]:
    """The tool's own database beside the test's, with the tables a batch writes."""
    name = str(mariadb_conn.execute("SELECT DATABASE()").fetchone()[0]) + "_rt"
    schema = sql.Identifier(name)
    mariadb_conn.execute(sql.SQL("CREATE DATABASE {}").format(schema))
    try:
        for statement in TOOL_TABLES:
            mariadb_conn.execute(sql.SQL(statement).format(schema=schema))
        yield name
    finally:
        mariadb_conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(schema))


def _batch_context(
    policy: BoundPolicy, phase: BoundPhase, schema: str, settings: Settings
) -> BatchContext:
    trail = AuditTrail(
        schema,
        load_key(SecretStr(AUDIT_KEY), "audit_key"),
        {"os_user": "test"},
        load_signer(SecretStr(AUDIT_SIGNING_KEY)),
    )
    key = load_key(SecretStr(PSEUDONYM_KEY), "pseudonym_key")
    return BatchContext(policy, phase, date.today(), None, settings, trail, uuid4(), key)


def _limits(conn: Connection) -> tuple[Any, ...]:
    row = conn.execute("SELECT " + ", ".join(f"@@SESSION.{n}" for n in LIMITS)).fetchone()
    return tuple(row)


def _entries(conn: Connection, schema: str) -> list[tuple[Any, ...]]:
    query = sql.SQL("SELECT seq, event, phase, subjects, `rows`, detail FROM {} ORDER BY seq")
    return [tuple(row) for row in conn.execute(query.format(sql.Identifier(schema, "audit")))]


@pytest.mark.mariadb_only("reads max_statement_time (MySQL: max_execution_time, SELECT only)")
def test_a_whole_batch_runs_with_its_limits_and_audit_entry_on_mariadb(
    mariadb_conn: Connection, tool_schema: str, tmp_path: Path
) -> None:
    _populate(mariadb_conn)
    folder = write_policy(tmp_path / "p", POLICY.format(name="p", phases=_phase("purge", "purge")))
    policy = _bind(mariadb_conn, folder, tool_schema=tool_schema)
    ctx = _batch_context(policy, policy.phases[0], tool_schema, Settings())
    before = _limits(mariadb_conn)
    # subjects 1, 3, 5 are due, 2 is not (seen today), 1000 is not there
    (result,) = run_batch(mariadb_conn, [ctx], [1, 2, 3, 5, 1000])
    assert result is not None
    assert (result.acted, result.locked_elsewhere, result.no_longer_due, result.gone) == (
        3,
        0,
        1,
        1,
    )
    assert _by_table([result.rows]) == [
        {"people": 3, "visits": 6, "acts": 6, "mails": 3, "notes": 3}
    ], result.rows
    assert _limits(mariadb_conn) == before  # the batch's limits were the transaction's only
    people = [row[0] for row in mariadb_conn.execute("SELECT id FROM people WHERE id < 7")]
    assert people == [2, 4, 6]
    (entry,) = _entries(mariadb_conn, tool_schema)
    assert entry[:4] == (1, "batch", "purge", 3)
    assert json.loads(entry[5])["gone"] == 1
    digests = mariadb_conn.execute(
        sql.SQL("SELECT subject_digests FROM {}").format(sql.Identifier(tool_schema, "audit"))
    ).fetchone()[0]
    assert json.loads(digests) == sorted(ctx.trail.subject_digest("p", k) for k in (1, 3, 5))
    assert result.entry is not None and result.entry.content["seq"] == 1


@pytest.mark.mariadb_only("reads max_statement_time (MySQL: max_execution_time, SELECT only)")
def test_a_lock_wait_beyond_the_batchs_lock_timeout_fails_it_with_nothing_changed_on_mariadb(
    mariadb_conn: Connection, mariadb_url: str, tool_schema: str, tmp_path: Path
) -> None:
    """The application holds a visit of a due subject: the batch locks the subject (its own row
    is free), then its purge waits for the visit's row beyond the batch's lock timeout (1 s, the
    server's least): the batch fails as a lock timeout, everything rolled back, no audit
    entry, the session's limits as they were."""
    from retention.db import connect

    _populate(mariadb_conn)
    folder = write_policy(tmp_path / "p", POLICY.format(name="p", phases=_phase("purge", "purge")))
    policy = _bind(mariadb_conn, folder, tool_schema=tool_schema)
    settings = Settings(lock_timeout_ms=1, statement_timeout_ms=60_000)
    ctx = _batch_context(policy, policy.phases[0], tool_schema, settings)
    state, before = _state(mariadb_conn), _limits(mariadb_conn)
    with connect(Settings(), url=mariadb_url) as application, application.transaction():
        application.execute("SELECT id FROM visits WHERE id = 31 FOR UPDATE").fetchall()
        with pytest.raises(errors.LockNotAvailable):
            run_batch(mariadb_conn, [ctx], [1, 3, 5])
    assert not engine_of(mariadb_conn).session.in_transaction(mariadb_conn)
    assert _state(mariadb_conn) == state
    assert _entries(mariadb_conn, tool_schema) == []
    assert _limits(mariadb_conn) == before
    # once the application let go, the same batch goes through
    (result,) = run_batch(mariadb_conn, [ctx], [1, 3, 5])
    assert result is not None and result.acted == 3
    assert len(_entries(mariadb_conn, tool_schema)) == 1
