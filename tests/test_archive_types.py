"""Round trip of every kind of value: archive, restore into an empty copy of the schema, rows
identical (types included); and the standard `age` command line decrypts the files."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import shutil
import subprocess
import tarfile
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pyrage
import pytest

from retention.archive import catalog, codec, container, expiry, restore
from retention.archive.model import ArchiveFile, Segment
from retention.archive.storage import LocalStorage
from retention.store.schema import migrate
from tests.archive_helpers import KeyPair, archive_settings, key_pair
from tests.engine_helpers import run, trail, write_policy
from tests.fix_db import temporary_database

DDL = """
CREATE TABLE people (
    id bigint PRIMARY KEY, nom text NOT NULL, initiale char(3), born date, last_visit timestamptz,
    seen timestamp, weight real, score double precision, balance numeric(14,4), small smallint,
    alive boolean, photo bytea, notes json, extra jsonb, tags text[], matrix int[], token uuid,
    slot time, stay interval, addr inet
);
CREATE TABLE visits (
    visit_id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id bigint NOT NULL REFERENCES people, at timestamp, amount numeric(12,4), data jsonb
);
"""

ROWS = """
INSERT INTO people VALUES
 (1, 'Dupont', 'é', '1950-02-28', '2001-03-31 02:30:00.123456+02', '1999-12-31 23:59:59.999999',
  1.1, 'NaN', 12.5000, -32768, true, '\\x00ff5c0a0d', '{"x":  1,\n\t "x":2}',
  '{"b": [1, 2.50, "\\u00e9"], "a": null}', '{"a,b",NULL,"\\\\","line\nbreak"}',
  '{{1,2},{3,4}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '12:34:56.789',
  '1 year 2 mons -3 days 04:05:06.7', '10.1.2.3/24'),
 (2, 'O''Brien "Tab\there"', NULL, '0001-01-01 BC', '2002-10-27 02:30:00+01', NULL,
  '-Infinity', -0.0, NULL, 0, NULL, '', NULL, 'null', '{}', NULL, NULL, NULL, NULL, '::1'),
 (3, 'Zoë', 'ab', '2000-02-29', '2003-01-01 00:00:00+00', '2024-01-01', 3.4e38, 1e-300,
  -0.0001, 7, false, '\\x', '"s\\ttr"', '"x"', NULL, '{}', NULL, '00:00', 'P1Y', NULL);
INSERT INTO visits (person_id, at, amount, data) VALUES
 (1, '2001-03-30 10:00', 99.9900, '{"k": [1.10, {"z": null}]}'),
 (1, '2001-03-31 10:00', NULL, NULL),
 (2, '2002-10-27 01:00', 0.0001, '[]'),
 (3, '2003-01-01 00:00', -1, '1e400');
"""

POLICY = """
name: people
subject: {table: people, key: id}
dates:
  last: {column: last_visit}
retain_until: last + 40 years
phases:
  - name: archive
    due: last + 1 year
    action: archive
"""


def _snapshot(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    return {
        "people": [r[0] for r in conn.execute("SELECT t::text FROM people t ORDER BY id")],
        "visits": [r[0] for r in conn.execute("SELECT t::text FROM visits t ORDER BY visit_id")],
        "json": [r[0] for r in conn.execute("SELECT notes::text FROM people ORDER BY id")],
    }


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return key_pair(tmp_path / "keys")


def _archive(conn: psycopg.Connection[Any], url: str, tmp_path: Path, keys: KeyPair) -> Any:
    conn.execute(DDL)
    conn.execute(ROWS)
    config = archive_settings(
        url, write_policy(tmp_path / "policies", POLICY), tmp_path / "archive", [keys.recipient]
    )
    report = run(conn, config, at=date(2025, 1, 1))
    assert report.outcome == "completed"
    assert report.phases[0].acted == 3
    assert conn.execute("SELECT count(*) FROM people").fetchone() == (0,)
    return config


def test_round_trip_into_an_empty_copy_of_the_schema_gives_identical_rows(
    conn: psycopg.Connection[Any], db_url: str, pg_admin_url: str, tmp_path: Path, keys: KeyPair
) -> None:
    with temporary_database(pg_admin_url) as scratch_url, psycopg.connect(scratch_url) as scratch:
        scratch.autocommit = True
        scratch.execute(DDL)
        scratch.execute(ROWS)
        original = _snapshot(scratch)
    config = _archive(conn, db_url, tmp_path, keys)
    assert config.archive_dir is not None
    storage = LocalStorage(config.archive_dir)
    with temporary_database(pg_admin_url) as copy_url, psycopg.connect(copy_url) as copy:
        copy.autocommit = True
        copy.execute(DDL)
        migrate(copy)
        audit = trail(conn, config)
        for subject in ("1", "2", "3"):
            found = restore.find(conn, "retention", audit, subject, "people")
            record = restore.load(conn, storage, found[0], [keys.identity], subject)
            restore.into_database(copy, "retention", audit, record, subject)
        assert _snapshot(copy) == original
        restored = copy.execute(
            "SELECT count(*) FROM retention.audit WHERE event = 'archive_restored'"
        ).fetchone()
        assert restored == (3,)


def test_the_age_command_line_decrypts_an_archive(
    conn: psycopg.Connection[Any], db_url: str, tmp_path: Path, keys: KeyPair
) -> None:
    age = shutil.which("age")
    if age is None:
        pytest.skip("the age command is not installed (make tools: apt-get install age)")
    config = _archive(conn, db_url, tmp_path, keys)
    item = catalog.files(conn, "retention")[0]
    assert config.archive_dir is not None
    out = tmp_path / "out"
    out.mkdir()
    with tarfile.open(config.archive_dir / item.name) as outer:
        outer.extractall(out, filter="data")
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    total = 0
    for segment in index["segments"]:
        plain = subprocess.run(
            [age, "-d", "-i", str(keys.file), str(out / segment["member"])],
            capture_output=True,
            check=True,
        ).stdout
        folder = out / segment["group"]
        folder.mkdir()
        subprocess.run(["tar", "-xzf", "-", "-C", str(folder)], input=plain, check=True)
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        for table in manifest["tables"]:
            data = (folder / table["member"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == table["sha256"]
            # any CSV reader opens it: a header of the column names, then one record per row
            records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
            assert records[0] == [c["name"] for c in table["columns"]]
            assert len(records) - 1 == table["rows"]
            total += table["rows"]
        assert manifest["subject"] == {"table": "public.people", "key": "id"}
        columns = {c["name"]: c for c in manifest["tables"][0]["columns"]}
        assert columns["extra"]["type"] == "jsonb" and columns["born"]["type"] == "date"
    assert total == 3 + 4


V1 = Path(__file__).parent / "data" / "archive-v1"


def _v1_file() -> tuple[LocalStorage, ArchiveFile, pyrage.x25519.Identity]:
    """The version 1 fixture as the catalogue would describe it."""
    storage = LocalStorage(V1 / "archive")
    name = next(iter(storage.names()))
    data = storage.read(name)
    index = json.loads(container.read_tar(data)[container.INDEX])
    assert index["format_version"] == 1
    item = ArchiveFile(
        file_id=UUID(index["file_id"]),
        name=name,
        version=index["version"],
        run_id=None,
        policy=index["policy"],
        policy_sha256=index["policy_sha256"],
        phase=index["phase"],
        created_at=datetime.fromisoformat(index["created_at"]),
        bytes=len(data),
        sha256=container.sha256(data),
        recipients=tuple(index["recipients"]),
        segments=tuple(
            Segment(
                group=s["group"],
                expires_on=date.fromisoformat(s["expires_on"]),
                subjects=s["subjects"],
                subject_digests=tuple(s["subject_digests"]),
                rows=s["rows"],
                bytes=s["bytes"],
                sha256=s["sha256"],
            )
            for s in index["segments"]
        ),
    )
    key = (V1 / "custodian.key").read_text(encoding="utf-8").splitlines()[-1]
    return storage, item, pyrage.x25519.Identity.from_str(key)


def test_a_version_1_archive_is_still_restored(
    conn: psycopg.Connection[Any], db_url: str, pg_admin_url: str, tmp_path: Path
) -> None:
    """Files written before version 2 (JSON Lines) stay readable: the fixture, written by the
    version 1 writer from this module's rows, restores them identical."""
    with temporary_database(pg_admin_url) as scratch_url, psycopg.connect(scratch_url) as scratch:
        scratch.autocommit = True
        scratch.execute(DDL)
        scratch.execute(ROWS)
        original = _snapshot(scratch)
    storage, item, identity = _v1_file()
    conn.execute(DDL)
    migrate(conn)
    config = archive_settings(
        db_url, write_policy(tmp_path / "policies", POLICY), tmp_path / "archive", []
    )
    audit = trail(conn, config)
    restored = set()
    for segment in item.segments:
        for subject in ("1", "2", "3"):
            record = restore.load(conn, storage, restore.Found(item, segment), [identity], subject)
            assert record.version == 1
            if record.rows["public.people"]:
                restore.into_database(conn, "retention", audit, record, subject)
                restored.add(subject)
    assert restored == {"1", "2", "3"}
    assert _snapshot(conn) == original


def test_expiry_keeps_a_version_1_file_in_its_format(tmp_path: Path) -> None:
    """Dropping an expired segment copies the others as they are: the rewritten file keeps the
    version 1 index and README (its segments are JSON Lines)."""
    storage, item, identity = _v1_file()
    shutil.copytree(V1 / "archive", tmp_path / "archive")
    copy = LocalStorage(tmp_path / "archive")
    name, _, _ = expiry._rewrite(copy, item, list(item.segments[1:]))
    members = container.read_tar(copy.read(name))
    assert json.loads(members[container.INDEX])["format_version"] == 1
    assert b"version 1" in members[container.README]
    assert members[container.README] == container.read_tar(storage.read(item.name))["README.txt"]
    kept = item.segments[1]
    rewritten = replace(item, name=name, sha256=container.sha256(copy.read(name)))
    manifest, _ = restore.open_segment(copy, restore.Found(rewritten, kept), [identity])
    assert manifest["format_version"] == 1 and manifest["group"] == kept.group


def test_csv_records_counts_rows_whose_values_span_lines() -> None:
    """The read-back's row count: records, not lines (a quoted value may hold line breaks)."""
    rng = random.Random(20261129)
    values = ["a", "", "x,y", 'q"q', "l1\nl2", '""', "\n", ',\n"', "\r\n"]
    for _ in range(500):
        rows = [
            [rng.choice(values) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(0, 6))
        ]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        if rng.random() < 0.5:
            writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerows(rows)
        assert codec.csv_records(out.getvalue().encode()) == len(rows)


def test_version_1_lines_split_at_line_feeds_only() -> None:
    """JSON leaves U+2028 and U+0085 unescaped: a version 1 row holding one is one row."""
    manifest = {
        "tables": [{"name": "public.people", "member": "tables/public.people.jsonl"}],
        "subject": {"table": "public.people", "key": "id"},
        "relations": [],
    }
    line = '{"id":1,"nom":"a\u2028b\x85c"}'
    inner = {"tables/public.people.jsonl": f"{line}\n".encode()}
    assert restore.subject_rows(manifest, inner, "1") == {"public.people": [line]}
