"""The audit trail on MariaDB: the same entries chain to the same hashes as on PostgreSQL, the
chain's lock keeps concurrent appenders linear, a rewritten row is found by `verify`; and the
commands around it (`init`, `grants`, `check`, `audit verify`) on a MariaDB URL.

Real servers: tests/fix_db.py's PostgreSQL, tests/fix_mariadb.py's MariaDB. The tool's database
on MariaDB is a database of its own, named per test and dropped afterwards.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.rows import TupleRow
from pydantic import SecretStr

from retention.audit import trail as trail_module
from retention.audit.seal import load_signer, trail_keys
from retention.audit.trail import (
    SIGNED_COLUMNS,
    AuditTrail,
    Entry,
    Stored,
    entry_hash,
    stored_content,
    verify,
)
from retention.db import connect
from retention.engines import Connection, errors, sql
from retention.engines.mariadb import schema as mariadb_schema
from retention.engines.mariadb.connection import MariaDBConnection
from retention.engines.rows import dict_row
from retention.errors import DatabaseError
from retention.keys import load_key
from retention.settings import Settings
from retention.store.schema import migrate
from tests.engine_helpers import AUDIT_KEY, cli
from tests.key_helpers import AUDIT_SIGNING_KEY
from tests.thread_helpers import in_threads

PINNED = datetime(2026, 12, 4, 22, 0, 0, 123456, tzinfo=UTC)
ACTOR = {"db_user": "retention", "os_user": "daemon", "host": "db1", "pid": 4242}

ENTRIES = (
    Entry(event="run.start", outcome="ok", run_id=UUID("8c5f7d3e-1b2a-4c3d-9e8f-0a1b2c3d4e5f")),
    Entry(
        event="phase.done",
        outcome="ok",
        run_id=UUID("8c5f7d3e-1b2a-4c3d-9e8f-0a1b2c3d4e5f"),
        policy="séjours",
        policy_sha256="ab" * 32,
        phase="purge",
        action="purge",
        rows={"public.sejour": 12, "public.patients": 3},
        subjects=3,
        subject_digests=("ff" * 16, "00" * 16, "7a" * 16),
        key_id="k1",
        detail={"note": "Zoë « ok » \u2028 \U0001f600", "ratio": 0.25, "nested": {"b": [1, 2]}},
    ),
    Entry(event="hold.add", outcome="ok", detail={"empty": {}, "none": None, "flag": True}),
)


class _PinnedClock(datetime):
    """datetime whose now() is PINNED: the entries' time, the same on both engines."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return PINNED if tz is not None else PINNED.replace(tzinfo=None)

    @classmethod
    def fromisoformat(cls, text: str) -> Any:
        return datetime.fromisoformat(text)  # a plain datetime, as the drivers expect


@pytest.fixture
def tool_db(mariadb_conn: MariaDBConnection) -> Iterator[str]:
    """The tool's database on MariaDB (named per test), migrated, dropped afterwards."""
    name = f"rt_ma_{secrets.token_hex(6)}"
    try:
        migrate(mariadb_conn, name)
        yield name
    finally:
        mariadb_conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _trail(schema: str) -> AuditTrail:
    key = load_key(SecretStr(AUDIT_KEY), "audit_key")
    return AuditTrail(schema, key, ACTOR, load_signer(SecretStr(AUDIT_SIGNING_KEY)))


def _write(conn: Connection, schema: str) -> list[Stored]:
    trail = _trail(schema)
    return [trail.append(conn, entry) for entry in ENTRIES]


def _read(conn: Connection, schema: str) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM {} ORDER BY seq").format(
                sql.SQL(", ").join(map(sql.Identifier, SIGNED_COLUMNS)),
                sql.Identifier(schema, "audit"),
            )
        )
        return list(cur.fetchall())


def test_the_same_entries_chain_to_the_same_hashes_on_both_engines(
    conn: psycopg.Connection[TupleRow],
    mariadb_conn: MariaDBConnection,
    tool_db: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trail_module, "datetime", _PinnedClock)
    migrate(conn, "retention")
    on_postgresql = _write(conn, "retention")
    on_mariadb = _write(mariadb_conn, tool_db)

    assert [s.hash for s in on_mariadb] == [s.hash for s in on_postgresql]
    assert [s.content for s in on_mariadb] == [s.content for s in on_postgresql]
    pg_rows, maria_rows = _read(conn, "retention"), _read(mariadb_conn, tool_db)
    # read back: the same canonical content, hashes and signatures (Ed25519 is deterministic)
    assert [stored_content(r) for r in maria_rows] == [stored_content(r) for r in pg_rows]
    for columns in ("hash", "prev_hash", "sig_key", "signature"):
        assert [r[columns] for r in maria_rows] == [r[columns] for r in pg_rows]
    assert [entry_hash(r["prev_hash"], stored_content(r)) for r in maria_rows] == [
        s.hash for s in on_postgresql
    ]
    # MariaDB keeps the instant in UTC, whatever the session's zone
    assert maria_rows[0]["recorded_at"] == PINNED.replace(tzinfo=None)
    keys = trail_keys(None, SecretStr(AUDIT_SIGNING_KEY))
    for connection, schema in ((conn, "retention"), (mariadb_conn, tool_db)):
        result = verify(connection, schema, keys=keys, signed_from=1)
        assert (result.intact, result.checked, result.unsigned) == (True, len(ENTRIES), 0)


def test_concurrent_appenders_keep_the_chain_linear(
    mariadb_url: str, mariadb_conn: MariaDBConnection, tool_db: str
) -> None:
    def append(worker: int) -> None:
        with connect(Settings(), url=mariadb_url) as own:
            trail = _trail(tool_db)
            for i in range(15):
                trail.append(own, Entry(event="test", outcome="ok", detail={"w": worker, "i": i}))

    failures = in_threads(append, 3)
    assert failures == []
    result = verify(mariadb_conn, tool_db)
    assert (result.intact, result.checked) == (True, 45)


def test_the_chain_lock_is_a_row_the_migration_creates(
    mariadb_conn: MariaDBConnection, tool_db: str
) -> None:
    mariadb_conn.execute(
        sql.SQL("CREATE TABLE {} LIKE {}").format(
            sql.Identifier(tool_db, "locks_saved"), sql.Identifier(tool_db, "locks")
        )
    )
    mariadb_conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(tool_db, "locks")))
    with pytest.raises(DatabaseError, match="'audit chain' is missing"):
        _trail(tool_db).append(mariadb_conn, ENTRIES[0])
    assert _read(mariadb_conn, tool_db) == []  # the entry's transaction rolled back
    assert mariadb_schema.migrate(mariadb_conn, tool_db) == []


def test_a_row_rewritten_behind_the_triggers_is_found(
    mariadb_conn: MariaDBConnection, tool_db: str
) -> None:
    _write(mariadb_conn, tool_db)
    audit = sql.Identifier(tool_db, "audit")
    with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        mariadb_conn.execute(sql.SQL("UPDATE {} SET subjects = 0 WHERE seq = 2").format(audit))
    with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        mariadb_conn.execute(sql.SQL("DELETE FROM {} WHERE seq = 2").format(audit))
    assert verify(mariadb_conn, tool_db).intact

    # what root can do: no trigger can be disabled, it can be dropped
    mariadb_conn.execute(
        sql.SQL("DROP TRIGGER {}").format(sql.Identifier(tool_db, "audit_no_update"))
    )
    mariadb_conn.execute(
        sql.SQL("UPDATE {} SET subjects = subjects - 1 WHERE seq = 2").format(audit)
    )
    result = verify(mariadb_conn, tool_db)
    assert (result.broken_seq, result.problem, result.checked) == (
        2,
        "its content was altered",
        1,
    )
    assert (
        f"the trigger `{tool_db}`.`audit_no_update` that refuses UPDATE on `{tool_db}`.`audit` "
        "is missing"
    ) in mariadb_schema.append_only_problems(mariadb_conn, tool_db)


def test_a_json_document_is_sent_as_its_text(mariadb_conn: MariaDBConnection) -> None:
    from retention.engines.params import Json

    row = mariadb_conn.execute(
        "SELECT JSON_VALID(%s), JSON_UNQUOTE(JSON_EXTRACT(%s, '$.a[1]'))",
        (Json({"a": [1, "é"]}), Json({"a": [1, "é"]})),
    ).fetchone()
    assert row is not None and (row[0], row[1]) == (1, "é")
    with pytest.raises(psycopg.ProgrammingError, match="not JSON"):
        mariadb_conn.execute("SELECT %s", (Json({"a": float("nan")}),))


# -- the commands on a MariaDB URL ----------------------------------------------------------------

POLICY = """\
name: p
subject: {table: patients, key: patient_id}
related:
  follow_foreign_keys: false
  links:
    - {table: visits, column: patient_id}
dates:
  naissance: {column: naissance}
retain_until: naissance + 100 years
phases:
  - name: destruction
    due: retain_until
    action: purge
"""


def test_init_grants_check_and_verify_on_a_mariadb_url(
    mariadb_url: str, mariadb_conn: MariaDBConnection, tmp_path: Path
) -> None:
    for statement in (
        "CREATE TABLE patients (patient_id INT PRIMARY KEY, nom VARCHAR(80), naissance DATE)",
        "CREATE TABLE visits (visit_id INT PRIMARY KEY, patient_id INT NOT NULL, KEY (patient_id))",
    ):
        mariadb_conn.execute(statement)
    (tmp_path / "p.yaml").write_text(textwrap.dedent(POLICY), encoding="utf-8")
    tool = f"rt_ma_{secrets.token_hex(6)}"
    try:
        done = cli(mariadb_url, "init", policies=tmp_path, RETENTION_SCHEMA_NAME=tool)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"schema '{tool}': applied 001_holds.sql, 002_audit.sql")
        again = cli(mariadb_url, "init", policies=tmp_path, RETENTION_SCHEMA_NAME=tool)
        assert again.stdout == f"schema '{tool}' is up to date\n"

        printed = cli(
            mariadb_url,
            "grants",
            "--role",
            "rt_daemon@10.0.0.5",
            policies=tmp_path,
            RETENTION_SCHEMA_NAME=tool,
        )
        assert printed.returncode == 0, printed.stderr
        assert "CREATE USER IF NOT EXISTS 'rt_daemon'@'10.0.0.5';" in printed.stdout
        assert f"GRANT SELECT, INSERT ON `{tool}`.`audit` TO 'rt_daemon'@'10.0.0.5';" in (
            printed.stdout
        )
        assert "GRANT DELETE ON `" in printed.stdout and "`.`visits` TO" in printed.stdout

        checked = cli(mariadb_url, "check", policies=tmp_path, RETENTION_SCHEMA_NAME=tool)
        assert checked.returncode == 0, checked.stderr
        # as root: the triggers are there, root's own privileges could rewrite the trail
        assert "is missing" not in checked.stderr and "was changed" not in checked.stderr
        assert "has DROP globally (*.*): it could rewrite the audit trail (TRUNCATE" in (
            checked.stderr
        )

        with connect(Settings(), url=mariadb_url) as own:
            config = Settings(
                audit_key=SecretStr(AUDIT_KEY), audit_signing_key=SecretStr(AUDIT_SIGNING_KEY)
            )
            assert config.audit_key is not None
            trail = AuditTrail(
                tool,
                load_key(config.audit_key, "audit_key"),
                trail_module.actor(own),
                load_signer(config.audit_signing_key),
            )
            for entry in ENTRIES:
                trail.append(own, entry)
        verified = cli(
            mariadb_url, "audit", "verify", policies=tmp_path, RETENTION_SCHEMA_NAME=tool
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "3 entries" in verified.stdout, verified.stdout

        digest = trail.subject_digest("p", 7)
        trail.append(
            own_again := connect(Settings(), url=mariadb_url),
            Entry(event="hold.add", outcome="ok", policy="p", subject_digests=(digest,)),
        )
        own_again.close()
        found = cli(
            mariadb_url,
            "audit",
            "find",
            "--policy",
            "p",
            "--subject",
            "7",
            "--format",
            "json",
            policies=tmp_path,
            RETENTION_SCHEMA_NAME=tool,
        )
        assert found.returncode == 0, found.stderr
        assert [e["seq"] for e in json.loads(found.stdout)] == [4]
        shown = cli(
            mariadb_url,
            "audit",
            "show",
            "--format",
            "json",
            policies=tmp_path,
            RETENTION_SCHEMA_NAME=tool,
        )
        assert shown.returncode == 0, shown.stderr
        assert [e["hash"] for e in json.loads(shown.stdout)] == [
            r["hash"] for r in _read(mariadb_conn, tool)
        ]

        mariadb_conn.execute(
            sql.SQL("DROP TRIGGER {}").format(sql.Identifier(tool, "audit_no_delete"))
        )
        mariadb_conn.execute(
            sql.SQL("DELETE FROM {} WHERE seq = 2").format(sql.Identifier(tool, "audit"))
        )
        broken = cli(mariadb_url, "audit", "verify", policies=tmp_path, RETENTION_SCHEMA_NAME=tool)
        assert broken.returncode == 1
        assert "entries 2..2 were removed" in broken.stdout
        warned = cli(mariadb_url, "check", policies=tmp_path, RETENTION_SCHEMA_NAME=tool)
        assert f"warning: the trigger `{tool}`.`audit_no_delete` that refuses DELETE" in (
            warned.stderr
        )
    finally:
        mariadb_conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(tool)))
