"""Archives on MariaDB, through the same code as on PostgreSQL, written in the same format.

The schema and rows of tests/test_actions_mariadb.py (declared foreign keys two levels deep, a
table linked by a plain column, a polymorphic table) plus a table of the value types an archive
must write exactly (timestamps with and without fractions, floats, decimals, bytes, text with
commas, quotes and line breaks, the empty string and NULL), on both engines. Whole batches
(`run_batch`: the lock, the re-check, the archive and the audit entry in one transaction)
archive the due subjects on each; the archives are decrypted with the custodian's key and
compared table by table: the same CSV bytes, but for TIMESTAMP values, which PostgreSQL writes
in the session's zone and MariaDB in UTC (the same instants). MariaDB's `DELETE ... RETURNING`
and the way without it (MySQL 8's, forced here) give the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pyrage
import pytest
from pydantic import SecretStr

from retention.archive import catalog, container
from retention.archive.session import ArchiveSession
from retention.archive.storage import LocalStorage
from retention.archive.writer import Target
from retention.audit.seal import load_signer
from retention.audit.trail import AuditTrail
from retention.engine.batch import BatchContext, run_batch
from retention.engines import Connection, engine_of, sql
from retention.engines.archive import float4_text
from retention.keys import load_key
from retention.settings import Settings
from retention.store.schema import migrate
from tests.archive_helpers import KeyPair, key_pair
from tests.engine_helpers import AUDIT_KEY, PSEUDONYM_KEY, write_policy
from tests.key_helpers import AUDIT_SIGNING_KEY
from tests.test_actions_mariadb import SUBJECTS, _bind, _populate, _state
from tests.thread_helpers import in_threads

EXTRAS = {
    "postgresql": """CREATE TABLE extras (
        id int PRIMARY KEY, person_id int NOT NULL REFERENCES people (id), ts timestamptz,
        ts3 timestamptz(3), dt timestamp(6), d date, n numeric(12,4), f8 double precision,
        f4 real, b bytea, t text, tm time(2)
    )""",
    "mariadb": """CREATE TABLE extras (
        id int PRIMARY KEY, person_id int NOT NULL, ts timestamp NULL, ts3 timestamp(3) NULL,
        dt datetime(6), d date, n decimal(12,4), f8 double, f4 float, b varbinary(20),
        t text, tm time(2), FOREIGN KEY (person_id) REFERENCES people (id)
    ) ENGINE=InnoDB""",
}
TEXTS = (
    'a "quoted", comma',
    "two\nlines\r\nand CR",
    "",
    None,
    "\\.",
    "Écrire à M. Dupont; ñ € 😀",
    " spaces ",
    "\\x00 not bytes",
)
FLOATS = (0.1, 1e15, 1.5e-5, -2.5, 123456789.125, 1e300, 0.0, None)
FLOATS4 = (0.1, 1e15, 1.5e-5, -2.5, 123456.125, 3.4e38, 0.0, None)


def _extras(conn: Connection) -> None:
    """`extras` (one row per person) and `docs`, linked both to a person and to a visit, so
    that a row can be reached twice (its group gathered first: codec.takings): each person's
    doc `i` (its first visit) and doc `1000 + i` (its second visit). A doc on another
    person's visit would be shared by two records: the batch would keep its subject unless
    the other is due too (tests/test_shared_records.py)."""
    conn.execute(EXTRAS[engine_of(conn).name])
    conn.execute(
        "CREATE TABLE docs (id int PRIMARY KEY, person_id int NOT NULL, visit_id int NOT NULL, "
        "body varchar(40))"
    )
    conn.execute("CREATE INDEX docs_person ON docs (person_id)")
    conn.execute("CREATE INDEX docs_visit ON docs (visit_id)")
    with conn.transaction():
        for i in range(1, SUBJECTS + 1):
            conn.execute("INSERT INTO docs VALUES (%s, %s, %s, %s)", (i, i, 10 * i + 1, f"d{i}"))
            conn.execute("INSERT INTO docs VALUES (%s, %s, %s, NULL)", (1000 + i, i, 10 * i + 2))
    with conn.transaction():
        for i in range(1, SUBJECTS + 1):
            conn.execute(
                "INSERT INTO extras VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    i,
                    i,
                    datetime(2001, 1 + i % 12, 1 + i % 28, i % 24, 30, 15),
                    datetime(2030, 3, 31, 22, 0, 0, (i % 7) * 1000),
                    datetime(1999, 12, 31, 23, 59, 59, i * 10 % 1_000_000),
                    None if i % 9 == 0 else date(1900 + i, 2, 28),
                    None if i % 11 == 0 else f"{i * 1.25 - 50:.4f}",
                    FLOATS[i // 2 % len(FLOATS)],
                    FLOATS4[(i // 2 + 3) % len(FLOATS4)],
                    None if i % 13 == 0 else bytes([i % 256, 0, 255, 44, 34, 10]) * (i % 3),
                    TEXTS[i // 2 % len(TEXTS)],
                    f"{i % 24:02d}:{i % 60:02d}:0{i % 10}.{i % 3}0",
                ),
            )


POLICY = """\
name: p
subject: {table: people, key: id}
related:
  links:
    - {table: mails, column: owner}
    - {table: docs, column: person_id}
    - {table: docs, column: visit_id, references: visits}
    - table: notes
      polymorphic:
        class_column: object_class
        id_column: object_id
        classes: {CPerson: people}
        unrelated_classes: {COther: "another kind of object"}
dates:
  seen: {column: seen}
  noted: {latest: written, over: notes}
retain_until: seen + 1 year
phases:
  - name: archivage
    due: greatest(seen, noted) + 1 year
    action: archive
"""


def _trail(schema: str) -> AuditTrail:
    return AuditTrail(
        schema,
        load_key(SecretStr(AUDIT_KEY), "audit_key"),
        {"os_user": "test"},
        load_signer(SecretStr(AUDIT_SIGNING_KEY)),
    )


@pytest.fixture
def tool_schema(mariadb_conn: Connection) -> Iterator[str]:
    """The tool's own database beside the test's, as `retention init` makes it."""
    name = str(mariadb_conn.execute("SELECT DATABASE()").fetchone()[0]) + "_rt"
    try:
        migrate(mariadb_conn, name)
        yield name
    finally:
        mariadb_conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _archive(
    conn: Connection, schema: str, folder: Path, archive_dir: Path, keys: KeyPair, batch: int = 25
) -> list[Any]:
    """Every due subject (the odd ones) archived by whole batches; the batches' results."""
    policy = _bind(conn, folder, tool_schema=schema)
    trail = _trail(schema)
    archive_dir.mkdir(parents=True, exist_ok=True)
    storage = LocalStorage.open(archive_dir)
    target = Target(storage, (keys.recipient,), "month", schema, trail)
    session = ArchiveSession(target, date.today(), uuid4(), None)
    ctx = BatchContext(
        policy,
        policy.phases[0],
        date.today(),
        None,
        Settings(),
        trail,
        session.run_id,
        load_key(SecretStr(PSEUDONYM_KEY), "pseudonym_key"),
        archive=session,
    )
    due = list(range(1, SUBJECTS + 1, 2))
    results = []
    for start in range(0, len(due), batch):
        (result,) = run_batch(conn, [ctx], due[start : start + batch])
        results.append(result)
    return results


def _tables(archive_dir: Path, keys: KeyPair) -> dict[str, dict[str, list[bytes]]]:
    """Per group, per table (without its schema), the CSV records of every archive file."""
    found: dict[str, dict[str, list[bytes]]] = {}
    for path in sorted(archive_dir.rglob("*.tar")):
        members = container.read_tar(path.read_bytes())
        for name, data in members.items():
            if not name.startswith("groups/"):
                continue
            inner = container.unpack_segment(pyrage.decrypt(data, [keys.identity]))
            manifest = json.loads(inner[container.MANIFEST])
            for table in manifest["tables"]:
                label = table["name"].split(".", 1)[1]
                body = inner[table["member"]]
                _, _, records = body.partition(b"\n")
                rows = found.setdefault(manifest["group"], {}).setdefault(label, [])
                rows += _records(records)
    for tables in found.values():
        for rows in tables.values():
            rows.sort()
    return found


def _records(data: bytes) -> list[bytes]:
    """The CSV records of a member, each as its bytes (a quoted value may span lines)."""
    out, current = [], b""
    for line in data.splitlines(keepends=True):
        current += line
        if current.count(b'"') % 2 == 0:
            out.append(current)
            current = b""
    assert current == b""
    return out


def _instants(record: bytes) -> list[Any]:
    """A record of `extras` with its TIMESTAMP values read as instants."""
    (fields,) = list(csv.reader(io.StringIO(record.decode("utf-8"))))
    for i in (2, 3):  # ts, ts3
        if fields[i]:
            fields[i] = datetime.fromisoformat(_offset(fields[i]))  # type: ignore[call-overload]
    return fields


def _offset(text: str) -> str:
    """`+01` -> `+01:00` (Python before 3.11 reads only the long form)."""
    return text + ":00" if text[-3] in "+-" else text


@pytest.fixture
def both(conn: Connection, mariadb_conn: Connection) -> tuple[Connection, Connection]:
    for each in (conn, mariadb_conn):
        _populate(each)
        _extras(each)
    return conn, mariadb_conn


def test_an_archive_written_on_mariadb_holds_what_postgresql_writes_for_the_same_rows(
    both: tuple[Connection, Connection], tool_schema: str, tmp_path: Path
) -> None:
    postgresql, mariadb = both
    migrate(postgresql, "retention")
    folder = write_policy(tmp_path / "policy", POLICY)
    keys = key_pair(tmp_path / "keys")
    written = {}
    for conn, schema in ((postgresql, "retention"), (mariadb, tool_schema)):
        name = engine_of(conn).name
        results = _archive(conn, schema, folder, tmp_path / name, keys)
        assert sum(r.acted for r in results) == SUBJECTS // 2, name
        written[name] = _tables(tmp_path / name, keys)
    assert _state(mariadb) == _state(postgresql)  # the same rows left
    assert _docs(mariadb) == _docs(postgresql)
    # per due subject: its two docs (one reached twice: through the person and its visit)
    assert len(_docs(mariadb)) == 2 * SUBJECTS - 2 * (SUBJECTS // 2)
    pg, my = written["postgresql"], written["mariadb"]
    assert sorted(pg) == sorted(my)  # the same groups
    for group in pg:
        assert sorted(pg[group]) == sorted(my[group])
        for table in pg[group]:
            if table == "extras":
                assert [_instants(r) for r in my[group][table]] == [
                    _instants(r) for r in pg[group][table]
                ], group
            else:
                assert my[group][table] == pg[group][table], (group, table)
    people = [r for g in my.values() for r in g["people"]]
    assert len(people) == SUBJECTS // 2
    extras = b"".join(r for g in my.values() for r in g["extras"])
    assert b'"a ""quoted"", comma"' in extras and b'"two\nlines\r\nand CR"' in extras
    assert b',"",' in extras and b'"\\\\."' not in extras  # `\.` is not alone in its record
    assert b"1e+15" in extras and b"\\x" in extras
    # the archived subjects are gone on MariaDB, with their visits, acts, mails, notes, extras
    assert mariadb.execute("SELECT count(*) FROM extras").fetchone()[0] == SUBJECTS // 2
    entries = mariadb.execute(
        sql.SQL("SELECT detail FROM {} WHERE event = 'batch' ORDER BY seq").format(
            sql.Identifier(tool_schema, "audit")
        )
    ).fetchall()
    assert len(entries) == 3 and all("archive" in json.loads(e[0]) for e in entries)
    # each engine restores what the other archived: subjects 1 and 3 come back the same
    _restore_across(tmp_path / "mariadb", keys, postgresql, "1")
    _restore_across(tmp_path / "postgresql", keys, mariadb, "1")
    _restore_across(tmp_path / "mariadb", keys, mariadb, "3")
    _restore_across(tmp_path / "postgresql", keys, postgresql, "3")
    assert _state(mariadb) == _state(postgresql)
    assert _docs(mariadb) == _docs(postgresql)
    assert _extras_rows(mariadb) == _extras_rows(postgresql)
    assert len(_state(mariadb)["people"]) == SUBJECTS // 2 + 2


def _segment_of(archive_dir: Path, keys: KeyPair, subject: str) -> tuple[Any, dict[str, bytes]]:
    """The manifest and members of the segment whose file holds the subject's people row."""
    for path in sorted(archive_dir.rglob("*.tar")):
        for name, data in container.read_tar(path.read_bytes()).items():
            if not name.startswith("groups/"):
                continue
            inner = container.unpack_segment(pyrage.decrypt(data, [keys.identity]))
            manifest = json.loads(inner[container.MANIFEST])
            people = next(t for t in manifest["tables"] if t["name"].endswith(".people"))
            if any(
                r.startswith(subject.encode() + b",") for r in _records(inner[people["member"]])
            ):
                return manifest, inner
    raise AssertionError("no segment holds the subject")


def test_a_restore_into_postgresql_says_which_links_mariadb_compared_loosely(
    both: tuple[Connection, Connection], tool_schema: str, tmp_path: Path
) -> None:
    """Subject 3's note, linked on MariaDB by its class in another case (`cperson`), is in the
    archive; PostgreSQL, comparing text exactly, does not pick it, and says so (the link
    columns and their collations) rather than restoring 2 rows of 3 in silence. MariaDB picks
    it from the same segment."""
    from loguru import logger

    postgresql, mariadb = both
    _other_case(mariadb)
    folder = write_policy(tmp_path / "policy", POLICY)
    keys = key_pair(tmp_path / "keys")
    _archive(mariadb, tool_schema, folder, tmp_path / "mariadb", keys)
    manifest, inner = _segment_of(tmp_path / "mariadb", keys, "3")
    notes = next(t["name"] for t in manifest["tables"] if t["name"].endswith(".notes"))
    messages: list[str] = []
    sink = logger.add(messages.append, format="{message}", level="WARNING")
    try:
        on_pg = engine_of(postgresql).archive.pick(postgresql, manifest, inner, "3")
    finally:
        logger.remove(sink)
    on_maria = engine_of(mariadb).archive.pick(mariadb, manifest, inner, "3")
    assert on_maria[notes][1] == 1 and on_pg[notes][1] == 0
    said = [m for m in messages if "written on MariaDB/MySQL" in m]
    assert len(said) == 1, messages
    table = next(t for t in manifest["tables"] if t["name"] == notes)
    collation = next(c["collation"] for c in table["columns"] if c["name"] == "object_class")
    assert collation.endswith("_ci")  # the test database's default: case-insensitive
    assert f"{notes}.object_class ({collation})" in said[0]
    assert "restore on MariaDB/MySQL" in said[0]


def _restore_across(source: Path, keys: KeyPair, conn: Connection, subject: str) -> None:
    """The subject's record from an archive written by the other engine, picked and loaded
    by this one (what `archive restore --into-database` does, without that engine's catalogue,
    where the file is not listed)."""
    from retention.archive import codec
    from retention.catalog.introspect import read_catalog

    manifest, inner = _segment_of(source, keys, subject)
    picked = engine_of(conn).archive.pick(conn, manifest, inner, subject)
    live = {t.name: t for t in read_catalog(conn).tables.values()}
    with conn.transaction():
        for table in manifest["tables"]:
            data, rows = picked[table["name"]]
            if rows:
                names = [c["name"] for c in table["columns"]]
                target = live[table["name"].split(".", 1)[1]]
                assert codec.copy_into(conn, target, names, data) == rows


def _docs(conn: Connection) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in conn.execute("SELECT * FROM docs ORDER BY id")]


def _extras_rows(conn: Connection) -> list[tuple[Any, ...]]:
    """`extras` as Python values, instants in UTC without zone, bytes as bytes."""
    out = []
    for row in conn.execute("SELECT * FROM extras ORDER BY id"):
        values = list(row)
        for i in (2, 3):
            if isinstance(values[i], datetime) and values[i].tzinfo is not None:
                values[i] = values[i].astimezone(UTC).replace(tzinfo=None)
        if values[9] is not None:
            values[9] = bytes(values[9])
        values[8] = None if values[8] is None else float4_text(values[8])
        tm = values[11]  # PostgreSQL's time, MariaDB's TIME (a duration): as seconds
        values[11] = (
            tm.total_seconds()
            if isinstance(tm, timedelta)
            else (tm.hour * 3600 + tm.minute * 60 + tm.second + tm.microsecond / 1e6)
        )
        out.append(tuple(values))
    return out


@pytest.mark.mariadb_only("compared with DELETE ... RETURNING")
def test_without_delete_returning_mariadb_writes_the_same_archive(
    mariadb_conn: Connection, tool_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MySQL 8's way (rows read FOR UPDATE, deleted by key, counts compared), forced on
    MariaDB: the same archive bytes as DELETE ... RETURNING, the same rows left; so too, both
    ways, with chunks of 7 keys padded to 9 (the last key again: the statement of each size is
    composed once)."""
    from retention.engines.mariadb import ENGINE, archive
    from retention.engines.mariadb.archive import ArchiveRows

    folder = write_policy(tmp_path / "policy", POLICY)
    keys = key_pair(tmp_path / "keys")
    left = None
    for way in ("returning", "without", "chunked", "chunked-without"):
        if way.startswith("chunked"):
            monkeypatch.setattr(archive, "CHUNK_ROWS", 7)
            monkeypatch.setattr(archive, "CHUNK_STEP", 3)
        for table in ("docs", "extras", "acts", "visits", "mails", "notes", "people"):
            mariadb_conn.execute(f"DROP TABLE IF EXISTS {table}")
        _populate(mariadb_conn)
        _extras(mariadb_conn)
        mariadb_conn.execute("UPDATE people SET born = '0000-00-00' WHERE id = 1")
        mariadb_conn.execute("UPDATE people SET born = '1975-00-10' WHERE id = 3")
        rows = ArchiveRows(delete_returning=not way.endswith("without"))
        monkeypatch.setattr(type(ENGINE), "archive", rows)
        results = _archive(mariadb_conn, tool_schema, folder, tmp_path / way, keys)
        assert sum(r.acted for r in results) == SUBJECTS // 2
        assert left is None or _state(mariadb_conn) == left
        left = _state(mariadb_conn)
    returning = _tables(tmp_path / "returning", keys)
    for way in ("without", "chunked", "chunked-without"):
        assert _tables(tmp_path / way, keys) == returning
    assert any(size == 9 for *_, size, _ in archive._STATEMENTS)
    people = b"".join(r for g in returning.values() for r in g["people"])
    # zero dates and zero months are written as they are stored, never read raw
    assert b"1,2000-01-01,Dupont 1,Martin1,0000-00-00," in people
    assert b",1975-00-10," in people


ODDS = """CREATE TABLE odds (
    id int PRIMARY KEY, person_id int NOT NULL,
    ci varchar(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci, l1 varchar(20) CHARACTER SET
    latin1, en enum('a', 'b,c', 'd"e'), st set('x', 'y'), bt bit(5), ts6 timestamp(6) NULL,
    f double, dt3 datetime(3), tm time, y year, bigu bigint unsigned, num decimal(20,10),
    vb varbinary(10), js json, sp varchar(10), u uuid, ip inet6, zi int(5) zerofill,
    zd decimal(8,2) zerofill
) ENGINE=InnoDB"""
ODD_ROWS = (
    # a fullwidth quote and comma under utf8mb4_unicode_ci, spaces alone (equal to '' under a
    # PAD SPACE collation, utf8mb4_bin's too)
    (
        1,
        1,
        "\uff02q\uff02",
        "Évreux\rcafé",
        "b,c",
        "x,y",
        5,
        "2001-02-03 04:05:06.120000",
        0.1,
        "2001-02-03 04:05:06.000",
        "-12:00:00",
        2024,
        18446744073709551615,
        "-0.0000000001",
        b"",
        '{"a": [1, "x,y"]}',
        "   ",
        "123e4567-e89b-12d3-a456-426614174000",
        "::1",
        42,
        "3.5",
    ),
    (
        3,
        3,
        "a\uff0cb",
        None,
        'd"e',
        "",
        0,
        "0000-00-00 00:00:00.000000",
        None,
        "1999-12-31 23:59:59.999",
        "838:59:59",
        None,
        0,
        None,
        b',"\n',
        None,
        "",
        None,
        None,
        0,
        0,
    ),
    (5, 5, *([None] * 19)),
)
ODD_RECORDS = [
    '1,1,\uff02q\uff02,"Évreux\rcafé","b,c","x,y",00101,2001-02-03 04:05:06.12+00,0.1,'
    "2001-02-03 04:05:06,-12:00:00,2024,18446744073709551615,-0.0000000001,\\x,"
    '"{""a"": [1, ""x,y""]}",   ,123e4567-e89b-12d3-a456-426614174000,::1,42,3.50\n',
    '3,3,a\uff0cb,,"d""e","",00000,0000-00-00 00:00:00,,1999-12-31 23:59:59.999,838:59:59,,0,'
    ',\\x2c220a,,"",,,0,0.00\n',
    "5,5" + "," * 19 + "\n",  # NULL in every kind of field
]


@pytest.mark.mariadb_only("MariaDB's types uuid and inet6")
def test_the_server_writes_each_record_as_postgresql_would_on_mariadb(
    mariadb_conn: Connection, tool_schema: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MariaDB writes each archived row's CSV record itself (a float's field excepted):
    the types PostgreSQL has not (enum, set, bit, year, unsigned, zerofill: the value's
    digits, not the display's zeros, zero dates, uuid, inet6) and the traps of text under a
    collation (a fullwidth quote or comma, spaces alone, the empty
    string, a CR alone in a latin1 column) give these exact bytes, both ways of deleting."""
    from retention.engines.mariadb import ENGINE
    from retention.engines.mariadb.archive import ArchiveRows

    folder = write_policy(
        tmp_path / "policy",
        POLICY.replace(
            "    - {table: mails, column: owner}\n",
            "    - {table: mails, column: owner}\n    - {table: odds, column: person_id}\n",
        ),
    )
    keys = key_pair(tmp_path / "keys")
    for way in ("returning", "without"):
        for table in ("odds", "docs", "extras", "acts", "visits", "mails", "notes", "people"):
            mariadb_conn.execute(f"DROP TABLE IF EXISTS {table}")
        _populate(mariadb_conn)
        _extras(mariadb_conn)
        mariadb_conn.execute(ODDS)
        for row in ODD_ROWS:
            mariadb_conn.execute(
                "INSERT INTO odds VALUES (" + ", ".join(["%s"] * len(row)) + ")", row
            )
        monkeypatch.setattr(
            type(ENGINE), "archive", ArchiveRows(delete_returning=way == "returning")
        )
        results = _archive(mariadb_conn, tool_schema, folder, tmp_path / way, keys)
        assert sum(r.acted for r in results) == SUBJECTS // 2
        written = sorted(r for g in _tables(tmp_path / way, keys).values() for r in g["odds"])
        assert written == [r.encode("utf-8") for r in ODD_RECORDS], way
        assert mariadb_conn.execute("SELECT count(*) FROM odds").fetchone()[0] == 0


def test_fields_written_here_and_by_the_server_alternate_in_one_record_on_mariadb(
    mariadb_conn: Connection, tool_schema: str, tmp_path: Path
) -> None:
    """A record whose fields this process writes (floats, bytes) come first, last and side by
    side with those the server writes: the fields in the columns' order, one comma apart."""
    folder = write_policy(
        tmp_path / "policy",
        POLICY.replace(
            "    - {table: mails, column: owner}\n",
            "    - {table: mails, column: owner}\n    - {table: mixed, column: person_id}\n",
        ),
    )
    _populate(mariadb_conn)
    _extras(mariadb_conn)
    mariadb_conn.execute(
        "CREATE TABLE mixed (f1 double, id int PRIMARY KEY, b varbinary(4), f2 float, "
        "person_id int NOT NULL, t varchar(8), f3 double, f4 double) ENGINE=InnoDB"
    )
    mariadb_conn.execute(
        "INSERT INTO mixed VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (1e20, 1, b"\x00,", 0.5, 1, "a,b", None, -1.5e-7),
    )
    mariadb_conn.execute(
        "INSERT INTO mixed VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (None, 3, None, None, 3, None, 2.5, None),
    )
    keys = key_pair(tmp_path / "keys")
    _archive(mariadb_conn, tool_schema, folder, tmp_path / "a", keys)
    written = sorted(r for g in _tables(tmp_path / "a", keys).values() for r in g["mixed"])
    assert written == [b",3,,,3,,2.5,\n", b'1e+20,1,\\x002c,0.5,1,"a,b",,-1.5e-07\n']


@pytest.mark.mariadb_only("a max_allowed_packet under 18 MB (MySQL's is 64 MB)")
def test_values_longer_than_a_server_text_are_written_whole_on_mariadb(
    mariadb_conn: Connection, tool_schema: str, tmp_path: Path
) -> None:
    """The server's text functions give NULL past max_allowed_packet (16 MiB here): a 9 MB
    blob (18 MB in hexadecimal) and 9 MB of double quotes (18 MB quoted) are returned as they
    are and written by this process, whole, beside fields the server writes."""
    assert int(mariadb_conn.execute("SELECT @@max_allowed_packet").fetchone()[0]) < 18_000_000
    folder = write_policy(
        tmp_path / "policy",
        POLICY.replace(
            "    - {table: mails, column: owner}\n",
            "    - {table: mails, column: owner}\n    - {table: big, column: person_id}\n",
        ),
    )
    _populate(mariadb_conn)
    _extras(mariadb_conn)
    mariadb_conn.execute(
        "CREATE TABLE big (id int PRIMARY KEY, person_id int NOT NULL, b longblob, "
        "doc longtext, short varchar(10)) ENGINE=InnoDB"
    )
    size = 9_000_000
    mariadb_conn.execute(f"INSERT INTO big VALUES (1, 1, REPEAT(x'ab', {size}), NULL, 'a')")
    mariadb_conn.execute(f"INSERT INTO big VALUES (3, 3, NULL, REPEAT('\"', {size}), '')")
    keys = key_pair(tmp_path / "keys")
    results = _archive(mariadb_conn, tool_schema, folder, tmp_path / "a", keys)
    assert sum(r.acted for r in results) == SUBJECTS // 2
    written = sorted(r for g in _tables(tmp_path / "a", keys).values() for r in g["big"])
    assert written == [
        b"1,1,\\x" + b"ab" * size + b",,a\n",
        b'3,3,,"' + b'""' * size + b'",""\n',
    ]
    assert mariadb_conn.execute("SELECT count(*) FROM big").fetchone()[0] == 0


def _meddling(
    monkeypatch: pytest.MonkeyPatch, url: str, statement: str, *, returning: bool
) -> None:
    """The engine's archive rows, with `statement` run by another transaction between the
    first read of `extras` and its DELETE (with or without DELETE ... RETURNING)."""
    from retention.db import connect
    from retention.engines.mariadb import ENGINE
    from retention.engines.mariadb.archive import ArchiveRows

    class Meddled(ArchiveRows):
        def _deleted(self, conn: Connection, table: Any, *args: Any) -> Any:
            if table.qname[1] == "extras":
                with connect(Settings(), url=url) as other:
                    other.execute(statement)
            return super()._deleted(conn, table, *args)

    monkeypatch.setattr(type(ENGINE), "archive", Meddled(delete_returning=returning))


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "without"])
@pytest.mark.mariadb_only("DELETE ... RETURNING", params=["returning"])
def test_a_row_changed_between_its_reading_and_its_deletion_stops_the_batch_on_mariadb(
    mariadb_conn: Connection,
    mariadb_url: str,
    tool_schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    returning: bool,
) -> None:
    """A batch row read through the joins, then changed by another transaction before the
    DELETE takes it by key (here moved to a subject not due): the DELETE returns other values
    than those read, so the batch rolls back, whichever way the engine deletes; the row is
    left as the other transaction made it, no file is left."""
    from retention.engines.archive import RowsChangedError

    _populate(mariadb_conn)
    _extras(mariadb_conn)
    # person 1 is due, person 2 is not
    statement = "UPDATE extras SET person_id = 2 WHERE id = 1"
    _meddling(monkeypatch, mariadb_url, statement, returning=returning)
    folder = write_policy(tmp_path / "policy", POLICY)
    with pytest.raises(RowsChangedError, match=r"extras: rows of the batch changed"):
        _archive(mariadb_conn, tool_schema, folder, tmp_path / "a", key_pair(tmp_path / "k"))
    assert mariadb_conn.execute("SELECT count(*) FROM extras").fetchone()[0] == SUBJECTS
    assert mariadb_conn.execute("SELECT count(*) FROM people").fetchone()[0] == SUBJECTS
    assert mariadb_conn.execute("SELECT person_id FROM extras WHERE id = 1").fetchone()[0] == 2
    assert not list((tmp_path / "a").rglob("*.tar"))


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "without"])
@pytest.mark.mariadb_only("DELETE ... RETURNING", params=["returning"])
def test_a_value_changed_between_reading_and_deletion_is_archived_as_deleted_on_mariadb(
    mariadb_conn: Connection,
    mariadb_url: str,
    tool_schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    returning: bool,
) -> None:
    """The first read takes only keys, link columns and groups; a value that is no link
    changed by another transaction before the DELETE (the row still the same subject's) is
    archived as the DELETE took it, and the batch commits."""
    _populate(mariadb_conn)
    _extras(mariadb_conn)
    statement = "UPDATE extras SET t = 'changed meanwhile' WHERE id = 1"
    _meddling(monkeypatch, mariadb_url, statement, returning=returning)
    folder = write_policy(tmp_path / "policy", POLICY)
    keys = key_pair(tmp_path / "k")
    results = _archive(mariadb_conn, tool_schema, folder, tmp_path / "a", keys)
    assert sum(r.acted for r in results) == SUBJECTS // 2
    assert mariadb_conn.execute("SELECT count(*) FROM extras WHERE id = 1").fetchone()[0] == 0
    extras = [r for g in _tables(tmp_path / "a", keys).values() for r in g["extras"]]
    (first,) = [r for r in extras if r.startswith(b"1,1,")]
    assert b"changed meanwhile" in first


def test_a_column_no_text_writes_exactly_keeps_the_batch_and_says_which_on_mariadb(
    mariadb_conn: Connection, tool_schema: str, tmp_path: Path
) -> None:
    """A spatial column has no exact text: the batch fails before deleting anything, the
    failure names the table and column (never a value), and no file is left."""
    from retention.engines.archive import UnreadableValueError

    _populate(mariadb_conn)
    _extras(mariadb_conn)
    mariadb_conn.execute("ALTER TABLE extras ADD COLUMN place POINT NULL")
    before = _state(mariadb_conn)
    folder = write_policy(tmp_path / "policy", POLICY)
    with pytest.raises(UnreadableValueError, match=r"extras\.place is of type point"):
        _archive(mariadb_conn, tool_schema, folder, tmp_path / "a", key_pair(tmp_path / "k"))
    assert _state(mariadb_conn) == before
    assert mariadb_conn.execute("SELECT count(*) FROM extras").fetchone()[0] == SUBJECTS
    assert not list((tmp_path / "a").rglob("*.tar"))


def test_a_table_changed_during_the_run_stops_the_batch_on_mariadb(
    mariadb_conn: Connection, tool_schema: str, tmp_path: Path
) -> None:
    """A column added after the policy was bound: its values would be deleted unwritten."""
    from retention.archive.errors import ArchiveVerifyError

    _populate(mariadb_conn)
    _extras(mariadb_conn)
    folder = write_policy(tmp_path / "policy", POLICY)
    policy = _bind(mariadb_conn, folder, tool_schema=tool_schema)
    mariadb_conn.execute("ALTER TABLE mails ADD COLUMN signature varchar(20)")
    before = _state(mariadb_conn)
    from retention.archive import codec

    with pytest.raises(ArchiveVerifyError, match="mails: the table or its columns changed"):
        codec.check_tables(mariadb_conn, policy)
    assert _state(mariadb_conn) == before


def _zero_dates(conn: Connection) -> None:
    """Subject 1 born on a zero date, subject 3 in a zero month (MariaDB's default sql_mode
    accepts both): archived and restored as they are stored."""
    conn.execute("UPDATE people SET born = '0000-00-00' WHERE id = 1")
    conn.execute("UPDATE people SET born = '1975-00-10' WHERE id = 3")


def _other_case(conn: Connection) -> None:
    """Subject 3's note under its class in another case (`cperson`, as Mediboard's data has
    them): the case-insensitive collation links it to subject 3, so it is archived with him."""
    conn.execute("UPDATE notes SET object_class = 'cperson' WHERE id = 3")


@pytest.fixture
def cli(
    mariadb_conn: Connection,
    mariadb_url: str,
    tool_schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Path, KeyPair]]:
    """Every due subject archived on MariaDB; the CLI's environment points at it."""
    from loguru import logger

    _populate(mariadb_conn)
    _extras(mariadb_conn)
    _zero_dates(mariadb_conn)
    _other_case(mariadb_conn)
    folder = write_policy(tmp_path / "policy", POLICY)
    keys = key_pair(tmp_path / "keys")
    archive_dir = tmp_path / "archive"
    _archive(mariadb_conn, tool_schema, folder, archive_dir, keys)
    for name, value in {
        "DATABASE_URL": mariadb_url,
        "SCHEMA_NAME": tool_schema,
        "AUDIT_KEY": AUDIT_KEY,
        "AUDIT_SIGNING_KEY": AUDIT_SIGNING_KEY,
        "POLICIES_DIR": str(folder),
        "ARCHIVE_DIR": str(archive_dir),
        "ARCHIVE_RECIPIENTS": keys.recipient,
    }.items():
        monkeypatch.setenv(f"RETENTION_{name}", value)
    yield archive_dir, keys
    logger.remove()  # `main` points the logs at the test's captured stderr: put them back
    logger.add(sys.stderr, level="INFO")


def test_archive_list_and_verify_run_on_mariadb(
    cli: tuple[Path, KeyPair], capsys: pytest.CaptureFixture[str]
) -> None:
    from retention.cli.main import main

    archive_dir, keys = cli
    capsys.readouterr()
    assert main(["archive", "list"]) == 0
    out = capsys.readouterr().out
    (line,) = [row for row in out.splitlines() if row.startswith("p ")]
    # one group (seen 2000-01-01 + 1 year), 3 files, 60 subjects, 10 rows each
    assert line.split()[:5] == ["p", "2001-01", "3", "60", "600"], out
    assert line.endswith("2001-01-31  expired (destroyed at the next run)")
    assert "Dupont" not in out
    assert main(["archive", "verify", "--identity", str(keys.file)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    victim = sorted(archive_dir.rglob("*.tar"))[0]
    data = bytearray(victim.read_bytes())
    data[-600] ^= 1
    victim.write_bytes(bytes(data))
    assert main(["archive", "verify"]) == 1
    out = capsys.readouterr().out
    assert victim.name in out


def _exact(conn: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, each value as MariaDB's exact text (zero dates included)."""
    people = "id, CAST(seen AS CHAR), name, short, CAST(born AS CHAR), CAST(stamp AS CHAR), "
    people += "born_txt, cp, CAST(weight AS CHAR), age, required, mandatory"
    extras = "id, person_id, CAST(ts AS CHAR), CAST(ts3 AS CHAR), CAST(dt AS CHAR), "
    extras += "CAST(d AS CHAR), CAST(n AS CHAR), f8, f4, HEX(b), t, CAST(tm AS CHAR)"
    state = {
        table: [tuple(row) for row in conn.execute(f"SELECT {columns} FROM {table} ORDER BY id")]
        for table, columns in (("people", people), ("extras", extras))
    }
    for table in ("visits", "acts", "mails"):
        state[table] = [tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
    notes = "SELECT id, object_class, object_id, body, CAST(written AS CHAR) FROM notes ORDER BY id"
    state["notes"] = [tuple(r) for r in conn.execute(notes)]
    return state


def test_archive_restore_to_a_folder_then_into_the_database_on_mariadb(
    cli: tuple[Path, KeyPair],
    mariadb_conn: Connection,
    tool_schema: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Subject 1 (a zero date, TIMESTAMPs, bytes, floats, text that CSV quotes): its record
    written to files, then loaded back, every row as it was before the archive."""
    from retention.cli.main import main

    _, keys = cli
    archived = _exact(mariadb_conn)
    database = str(mariadb_conn.execute("SELECT DATABASE()").fetchone()[0])
    args = ["archive", "restore", "--subject", "1", "--identity", str(keys.file)]
    assert main([*args, "--to", str(tmp_path / "out")]) == 0
    people = (tmp_path / "out" / f"{database}.people.csv").read_bytes().splitlines()
    assert len(people) == 2 and people[1].startswith(b"1,2000-01-01,Dupont 1,Martin1,0000-00-00,")
    assert main([*args, "--into-database"]) == 0
    out = capsys.readouterr().out
    assert "into the database" in out and "Dupont" not in out
    restored = _exact(mariadb_conn)
    outcomes = mariadb_conn.execute(
        sql.SQL("SELECT outcome FROM {} WHERE event = 'archive_restored' ORDER BY seq").format(
            sql.Identifier(tool_schema, "audit")
        )
    ).fetchall()
    assert [r[0] for r in outcomes] == ["exported", "restored"]
    assert main([*args, "--into-database"]) == 6  # already there: refused, nothing changed
    assert "already in the database" in capsys.readouterr().err
    assert _exact(mariadb_conn) == restored
    # the rows as they were before the archive: built again from the same seed
    for table in ("docs", "extras", "acts", "visits", "mails", "notes", "people"):
        mariadb_conn.execute(f"DROP TABLE {table}")
    _populate(mariadb_conn)
    _extras(mariadb_conn)
    _zero_dates(mariadb_conn)
    _other_case(mariadb_conn)
    original = _exact(mariadb_conn)
    ids = {"people": {1}, "visits": {11, 12}, "acts": {11, 12}, "mails": {1}, "notes": {1}}
    ids["extras"] = {1}
    for table, rows in original.items():
        back = [r for r in rows if r[0] in ids[table]]
        assert back and not set(back) & set(archived[table]), table
        assert restored[table] == sorted(archived[table] + back), table


def test_a_restore_follows_the_links_the_columns_collation_made_on_mariadb(
    cli: tuple[Path, KeyPair],
    mariadb_conn: Connection,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Subject 3's note, linked by a class name in another case (the server's case-insensitive
    collation matched it, so it was archived with him), comes back with his record: the restore
    compares as the column's collation compares, on the server."""
    from retention.cli.main import main

    _, keys = cli
    assert mariadb_conn.execute("SELECT count(*) FROM notes WHERE id = 3").fetchone() == (0,)
    args = ["archive", "restore", "--subject", "3", "--identity", str(keys.file)]
    assert main([*args, "--to", str(tmp_path / "out")]) == 0
    database = str(mariadb_conn.execute("SELECT DATABASE()").fetchone()[0])
    notes = (tmp_path / "out" / f"{database}.notes.csv").read_bytes().splitlines()
    assert [n.split(b",")[:3] for n in notes[1:]] == [[b"3", b"cperson", b"3"]]
    assert main([*args, "--into-database"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    back = mariadb_conn.execute("SELECT object_class, object_id FROM notes WHERE id = 3")
    assert back.fetchall() == [("cperson", 3)]


def test_expired_groups_are_destroyed_and_files_rewritten_on_mariadb(
    mariadb_conn: Connection,
    mariadb_url: str,
    tool_schema: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two groups in a file (2001-01 and 2001-06): on 2001-03-01 the first is destroyed (the
    file rewritten as its next version without it), later the second (the files deleted);
    `archive verify --identity` finds nothing wrong at each step."""
    from loguru import logger

    from retention.archive.expiry import expire
    from retention.cli.main import main

    _populate(mariadb_conn)
    _extras(mariadb_conn)
    mariadb_conn.execute("UPDATE people SET seen = '2000-06-01' WHERE id IN (3, 7, 51)")
    folder = write_policy(tmp_path / "policy", POLICY)
    keys = key_pair(tmp_path / "keys")
    archive_dir = tmp_path / "archive"
    _archive(mariadb_conn, tool_schema, folder, archive_dir, keys)
    for name, value in {
        "DATABASE_URL": mariadb_url,
        "SCHEMA_NAME": tool_schema,
        "AUDIT_KEY": AUDIT_KEY,
        "AUDIT_SIGNING_KEY": AUDIT_SIGNING_KEY,
        "POLICIES_DIR": str(folder),
        "ARCHIVE_DIR": str(archive_dir),
        "ARCHIVE_RECIPIENTS": keys.recipient,
    }.items():
        monkeypatch.setenv(f"RETENTION_{name}", value)
    storage = LocalStorage.open(archive_dir)
    trail = _trail(tool_schema)
    try:
        assert expire(mariadb_conn, storage, trail, tool_schema, date(2001, 3, 1), uuid4()) == 3
        names = sorted(p.name for p in archive_dir.rglob("*.tar"))
        # the third batch (subjects 101 to 119) had only 2001-01: its file is gone
        assert len(names) == 2 and all(n.endswith(".v2.tar") for n in names)
        assert main(["archive", "verify", "--identity", str(keys.file)]) == 0
        assert main(["archive", "list", "--all"]) == 0
        out = capsys.readouterr().out
        assert "2001-01" in out and "destroyed" in out and "2001-06" in out
        assert expire(mariadb_conn, storage, trail, tool_schema, date.today(), uuid4()) == 2
        assert not list(archive_dir.rglob("*.tar"))
        assert main(["archive", "verify"]) == 0
        events = mariadb_conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE event = 'archive_expired'").format(
                sql.Identifier(tool_schema, "audit")
            )
        ).fetchone()
        assert events is not None and events[0] == 5
    finally:
        logger.remove()
        logger.add(sys.stderr, level="INFO")


def test_a_cascading_foreign_key_outside_the_record_stops_the_batch_on_mariadb(
    mariadb_conn: Connection, tool_schema: str, tmp_path: Path
) -> None:
    """A table added by a migration after the run bound its policy, whose foreign key would
    delete its rows with a visit: they would be gone without being in any archive."""
    from retention.archive import codec
    from retention.archive.errors import ArchiveVerifyError

    _populate(mariadb_conn)
    _extras(mariadb_conn)
    folder = write_policy(tmp_path / "policy", POLICY)
    policy = _bind(mariadb_conn, folder, tool_schema=tool_schema)
    codec.check_tables(mariadb_conn, policy)  # as the run read them: nothing to say
    mariadb_conn.execute(
        "CREATE TABLE bills (id int PRIMARY KEY, visit_id int NOT NULL, CONSTRAINT bills_visit "
        "FOREIGN KEY (visit_id) REFERENCES visits (id) ON DELETE CASCADE) ENGINE=InnoDB"
    )
    with pytest.raises(ArchiveVerifyError, match="bills references visits through bills_visit"):
        codec.check_tables(mariadb_conn, policy)


def test_a_segment_under_a_legal_hold_is_listed_held_and_kept_on_mariadb(
    cli: tuple[Path, KeyPair],
    mariadb_conn: Connection,
    tool_schema: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A hold on subject 1 (a row of the tool's holds table, as `hold add` writes it): its
    segment is `held` in `archive list` and survives expiry; the others are destroyed."""
    from retention.archive.expiry import expire
    from retention.cli.main import main

    archive_dir, _ = cli
    mariadb_conn.execute(
        sql.SQL(
            "INSERT INTO {} (policy, subject_key, reason, held_since) "
            "VALUES ('p', '1', 'litige', '2026-01-01')"
        ).format(sql.Identifier(tool_schema, "holds"))
    )
    # released before the archive (in its retain_until already): compared with the file's
    # creation, an instant in UTC on both sides
    mariadb_conn.execute(
        sql.SQL(
            "INSERT INTO {} (policy, subject_key, reason, held_since, released_at) "
            "VALUES ('p', '51', 'litige', '2026-01-01', '2026-02-01')"
        ).format(sql.Identifier(tool_schema, "holds"))
    )
    capsys.readouterr()
    assert main(["archive", "list"]) == 0
    out = capsys.readouterr().out
    assert "held" in out, out
    storage = LocalStorage.open(archive_dir)
    assert expire(mariadb_conn, storage, _trail(tool_schema), tool_schema, date.today(), None) == 2
    (kept,) = list(archive_dir.rglob("*.tar"))
    assert kept.name.endswith(".v1.tar")  # subject 1's batch: left whole


def _fields(records: list[bytes]) -> list[list[str]]:
    return [next(csv.reader(io.StringIO(r.decode("utf-8"), newline=""))) for r in records]


def _last_as_instant(records: list[bytes]) -> list[Any]:
    """patients' last column: PostgreSQL's timestamptz (written with the session's offset),
    MariaDB's DATETIME in UTC (the demo's MariaDB schema, retention/demo/mariadb.py)."""
    out = []
    for fields in _fields(records):
        moment = datetime.fromisoformat(_offset(fields[-1])) if fields[-1] else None
        if moment is not None and moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        out.append((fields[:-1], moment))
    return sorted(out, key=repr)


def _last_as_json(records: list[bytes]) -> list[Any]:
    """user_log's last column: jsonb on PostgreSQL (keys reordered), text on MariaDB."""
    return sorted(((f[:-1], json.loads(f[-1])) for f in _fields(records)), key=repr)


_DEMO_TYPES = {"patients": _last_as_instant, "user_log": _last_as_json}


def test_a_run_with_an_archive_phase_on_mariadb_ends_as_on_postgresql(
    mariadb_admin_url: str, pg_admin_url: str, tmp_path: Path
) -> None:
    """`retention run` with dossier-medical's archive phase on the demo hospital built on both
    engines from one seed, then a second run: the same rows left, the same rows archived (the
    files decrypted and compared record by record: the same bytes but where the demo's two
    schemas hold different types), `archive verify --identity` clean on both."""
    from retention.db import connect
    from tests.archive_helpers import archive_policies
    from tests.fix_db import temporary_database
    from tests.test_run_mariadb import RUN, _cli, _hospital
    from tests.test_run_mariadb import _tables as _tables_of_run

    policies = archive_policies(tmp_path / "policies")
    keys = key_pair(tmp_path / "keys")
    hospital, tool = f"rt_arch_h_{os.getpid()}", f"rt_arch_t_{os.getpid()}"
    with connect(Settings(), url=mariadb_admin_url) as admin:
        for name in (hospital, tool):
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(hospital)))
    maria_url = mariadb_admin_url.rstrip("/") + "/" + hospital
    try:
        with connect(Settings(), url=maria_url) as conn:
            _hospital(conn)
        with temporary_database(pg_admin_url) as pg_url:
            with connect(Settings(), url=pg_url) as pg_conn:
                _hospital(pg_conn)
            written, undated = {}, {}
            for name, url, schema in (
                ("mariadb", maria_url, tool),
                ("postgresql", pg_url, "retention"),
            ):
                folder = tmp_path / name
                folder.mkdir()
                extra = {
                    "RETENTION_ARCHIVE_DIR": str(folder),
                    "RETENTION_ARCHIVE_RECIPIENTS": keys.recipient,
                    "RETENTION_BATCH_SIZE": "40",
                }
                planned = _cli(url, schema, policies, "plan", "--format", "json", **extra)
                assert planned.returncode == 0, planned.stdout[-3000:] + planned.stderr[-3000:]
                (phase,) = [
                    p for p in json.loads(planned.stdout)["policies"][0]["phases"]
                    if p["action"] == "archive"
                ]  # fmt: skip
                undated[name] = phase["undated_subjects"]
                text = _cli(url, schema, policies, "plan", **extra).stdout
                assert f"archived without an end of retention: {undated[name]:,}" in text, text
                for _ in ("first", "second"):
                    run = _cli(url, schema, policies, *RUN, **extra)
                    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
                    assert "Traceback" not in run.stderr
                    # batches side by side never deadlock (rows locked and deleted by key)
                    assert "skipped" not in run.stderr, run.stderr[-3000:]
                verify = _cli(url, schema, policies, "archive", "verify", "--identity",
                              str(keys.file), **extra)  # fmt: skip
                assert verify.returncode == 0, verify.stdout + verify.stderr
                written[name] = _tables(folder, keys)
                assert written[name], name
                with connect(Settings(), url=url) as conn:
                    segments = [s for f in catalog.files(conn, schema) for s in f.segments]
                # what the plan announced is what the run put into the group `undated`
                assert undated[name] == sum(s.subjects for s in segments if s.group == "undated")
            after_pg, after_maria = _tables_of_run(pg_url), _tables_of_run(maria_url)
        assert after_maria == after_pg
        assert undated["mariadb"] == undated["postgresql"] > 0, undated
        archived = sum(len(t["patients"]) for t in written["mariadb"].values())
        assert archived >= 10, archived  # the comparison means something
        assert sorted(written["mariadb"]) == sorted(written["postgresql"])
        for group, tables in written["postgresql"].items():
            assert sorted(tables) == sorted(written["mariadb"][group])
            for table, theirs in tables.items():
                mine = written["mariadb"][group][table]
                assert len(mine) == len(theirs), (group, table)
                if table in _DEMO_TYPES:  # the demo's schemas differ there (see _DEMO_TYPES)
                    assert _DEMO_TYPES[table](mine) == _DEMO_TYPES[table](theirs), (group, table)
                else:
                    assert mine == theirs, (group, table)
    finally:
        with connect(Settings(), url=mariadb_admin_url) as admin:
            for name in (hospital, tool):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def test_the_keys_table_joins_a_text_key_of_another_collation_on_mariadb(
    mariadb_conn: Connection,
) -> None:
    """A subject key under utf8mb4_unicode_ci (the session's is utf8mb4_general_ci): the
    batch's keys table is typed in the key's collation, so the joins compare without error
    1267 (an illegal mix of collations)."""
    from retention.catalog.introspect import read_catalog

    mariadb_conn.execute(
        "CREATE TABLE codes (code varchar(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci "
        "PRIMARY KEY) ENGINE=InnoDB"
    )
    mariadb_conn.execute("INSERT INTO codes VALUES ('A1'), ('B2')")
    table = read_catalog(mariadb_conn).find("codes")
    assert table is not None
    with mariadb_conn.transaction():
        keys = engine_of(mariadb_conn).archive.keys_table(
            mariadb_conn, table.columns["code"], {"A1": "2001-01"}
        )
        found = mariadb_conn.execute(
            sql.SQL("SELECT c.code, g.grp FROM codes AS c JOIN {} AS g ON c.code = g.k").format(
                keys
            )
        ).fetchall()
    assert found == [("A1", "2001-01")]


def test_the_kept_delete_statements_are_shared_safely_by_threads() -> None:
    """Batches side by side share the archive's kept DELETE statements: eight threads asking
    for 300 different ones (tables, sizes, both ways of deleting) at once each get the
    statement composed for what they asked (its table, its number of keys), the cache never
    holds more than 256, and a statement asked again is the one kept (composed once). (The
    lock's absence would not show here: CPython's OrderedDict operations hold the GIL.)"""
    import threading

    from retention.engines.catalogue import Column, ColumnKind, Table
    from retention.engines.mariadb import archive
    from retention.engines.mariadb.render import render

    def table(i: int) -> Table:
        columns = {
            "id": Column("id", "int(11)", "int", ColumnKind.NUMBER, None, True, None),
            "txt": Column("txt", "varchar(20)", "varchar", ColumnKind.TEXT, 20, False, None),
        }
        return Table("db", f"t{i}", columns, ("id",), (), (), 0, "")

    tables = [table(i) for i in range(75)]
    asked = [(t, size, way) for t in tables for size in (50, 100) for way in (True, False)]
    archive._STATEMENTS.clear()
    got: dict[int, list[tuple[Any, ...]]] = {}
    start = threading.Barrier(8)

    def ask(n: int) -> None:
        start.wait()
        mine = got.setdefault(n, [])
        for t, size, way in asked[n::8] + asked[:40:8]:
            mine.append((t.name, size, way, archive._by_keys(t, ["id"], [0], size, way)))

    failures = in_threads(ask, 8)
    assert not failures
    assert len(archive._STATEMENTS) <= 256
    for name, size, way, statements in (s for each in got.values() for s in each):
        rendered = [render(s, list(range(size))) for s in statements]
        assert len(rendered) == (1 if way else 2)
        assert all(f"`{name}`" in r.text for r in rendered)
        assert all(len(r.slots) == size for r in rendered)  # one slot per key, `size` keys
    # asked again: the kept statement itself
    again = archive._by_keys(tables[-1], ["id"], [0], 100, True)
    assert archive._by_keys(tables[-1], ["id"], [0], 100, True) is again


@pytest.mark.parametrize(
    "collation",
    [
        "utf8mb4_general_ci",
        "utf8mb4_unicode_ci",
        "utf8mb4_bin",
        "utf8mb4_nopad_bin",
        "utf8mb4_general_nopad_ci",
        "latin1_swedish_ci",
    ],
)
@pytest.mark.mariadb_only(
    "MariaDB's NO PAD collations", params=["utf8mb4_nopad_bin", "utf8mb4_general_nopad_ci"]
)
def test_a_restore_compares_text_as_the_server_compares_it_under_the_collation(
    mariadb_conn: Connection, collation: str
) -> None:
    """Every pair of these values is equal for the restore's comparison exactly when the server
    finds them equal under the collation (`=`, PAD SPACE or NO PAD)."""
    from retention.engines.mariadb.archive_pick import _Weights

    values = [
        "CPatient",
        "cpatient",
        "CPatient ",
        "CPatiènt",
        "P-001",
        "p-001  ",
        "",
        " ",
        "Straße",
    ]
    weights = _Weights(mariadb_conn)
    weights.compute([(collation, values)])
    charset = collation.split("_", 1)[0]
    for a in values:
        for b in values:
            server = mariadb_conn.execute(
                f"SELECT CONVERT(%s USING {charset}) = CONVERT(%s USING {charset}) "
                f"COLLATE {collation}",
                (a, b),
            ).fetchone()
            ours = weights.of(collation, a) == weights.of(collation, b)
            assert weights.of(collation, a) is not None
            assert ours == bool(server[0]), (a, b)


@pytest.mark.parametrize("returning", [True, False])
@pytest.mark.mariadb_only("DELETE ... RETURNING", params=["True"])
def test_a_one_column_record_quotes_the_end_of_data_marker_on_mariadb(
    mariadb_conn: Connection, returning: bool
) -> None:
    """A one-column table: its value `\\.` alone is quoted, as PostgreSQL's COPY quotes it
    (unquoted, `COPY ... FROM` would read it as the end of the data); the empty string is
    `""`; other values as they are. Taken by `ArchiveRows.take` itself, in a transaction that
    rolls back: the rows come back."""
    from retention.catalog.introspect import read_catalog
    from retention.engines.archive import Taking
    from retention.engines.mariadb.archive import ArchiveRows

    mariadb_conn.execute("CREATE TABLE solo (v varchar(10) PRIMARY KEY) ENGINE=InnoDB")
    for value in ("\\.", "", "a", "x,y", "\\.x"):
        mariadb_conn.execute("INSERT INTO solo VALUES (%s)", (value,))
    table = read_catalog(mariadb_conn).find("solo")
    assert table is not None
    taking = Taking(
        sql.SQL("(SELECT 'g1' AS grp) AS p"), sql.SQL("TRUE"), sql.SQL("p.grp"), {}, ("v",)
    )
    rows = ArchiveRows(delete_returning=returning)
    with mariadb_conn.transaction(force_rollback=True):
        taken = rows.take(mariadb_conn, table, taking)
        assert mariadb_conn.execute("SELECT count(*) FROM solo").fetchone() == (0,)
    assert mariadb_conn.execute("SELECT count(*) FROM solo").fetchone() == (5,)
    assert taken == {"g1": sorted([b'"\\."\n', b'""\n', b"a\n", b'"x,y"\n', b"\\.x\n"])}
