"""Round trip of every kind of value: archive, restore into an empty copy of the schema, rows
identical (types included); and the standard `age` command line decrypts the files."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.archive import catalog, restore
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
            record = restore.load(storage, found[0], [keys.identity], subject)
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
            assert len(data.splitlines()) == table["rows"]
            for line in data.splitlines():
                json.loads(line)
            total += table["rows"]
        assert manifest["subject"] == {"table": "public.people", "key": "id"}
        columns = {c["name"]: c for c in manifest["tables"][0]["columns"]}
        assert columns["extra"]["encoding"] == "text" and columns["born"]["type"] == "date"
    assert total == 3 + 4
