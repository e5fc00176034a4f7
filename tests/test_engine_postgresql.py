"""PostgreSQL's side of the engine seam: locks, transaction settings, streams, bulk copies,
shared snapshots and the tool's own schema behave as their callers rely on, on a real server."""

from __future__ import annotations

import fnmatch
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.engines import Engine, engine_for, engine_of, errors, sql
from retention.engines.locks import TransactionLock
from tests.fix_db import _drop_database, _new_name, temporary_database

Conn = psycopg.Connection[Any]


@pytest.fixture
def engine(conn: Conn) -> Engine:
    return engine_of(conn)


@pytest.fixture
def other(db_url: str) -> Iterator[Conn]:
    with psycopg.connect(db_url, autocommit=True) as second:
        yield second


def _setting(conn: Conn, name: str) -> str:
    row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    assert row is not None
    return str(row[0])


def test_the_run_lock_admits_one_session_and_names_its_holder(
    engine: Engine, conn: Conn, other: Conn
) -> None:
    locks = engine.locks
    assert locks.run_lock_holder(other) is None
    assert locks.try_run_lock(conn)
    assert not locks.try_run_lock(other)
    holder = locks.run_lock_holder(other)
    assert holder is not None
    assert holder.session_id == conn.info.backend_pid
    assert holder.since is not None
    locks.release_run_lock(conn)
    assert locks.try_run_lock(other)
    assert not locks.try_run_lock(conn)


def test_a_run_on_another_database_neither_holds_nor_names_this_ones_lock(
    engine: Engine, conn: Conn, pg_admin_url: str
) -> None:
    with (
        temporary_database(pg_admin_url) as elsewhere,
        psycopg.connect(elsewhere, autocommit=True) as there,
    ):
        assert engine.locks.try_run_lock(there)
        assert engine.locks.run_lock_holder(conn) is None
        assert engine.locks.try_run_lock(conn)


def test_the_run_lock_survives_commits_and_ends_with_its_session(
    engine: Engine, db_url: str, other: Conn
) -> None:
    with psycopg.connect(db_url, autocommit=True) as first:
        assert engine.locks.try_run_lock(first)
        with first.transaction():
            first.execute("SELECT 1")
        assert not engine.locks.try_run_lock(other)
        pid = first.info.backend_pid
    _wait_for_exit(other, pid)
    assert engine.locks.try_run_lock(other)


def _wait_for_exit(conn: Conn, pid: int) -> None:
    """The server ends a closed session's backend on its own time: wait for it (bounded)."""
    for _ in range(600):
        if not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            return
        time.sleep(0.05)
    raise AssertionError(f"backend {pid} still alive after its connection closed")


def test_a_transaction_lock_waits_for_the_holders_commit(
    engine: Engine, conn: Conn, other: Conn
) -> None:
    with conn.transaction():
        engine.locks.lock_in_transaction(conn, TransactionLock.AUDIT_CHAIN)
        with pytest.raises(errors.LockNotAvailable), other.transaction():
            engine.session.lock_timeout(other, 50)
            engine.locks.lock_in_transaction(other, TransactionLock.AUDIT_CHAIN)
        with other.transaction():  # another lock is another key
            engine.locks.lock_in_transaction(other, TransactionLock.MIGRATIONS)
    with other.transaction():
        engine.locks.lock_in_transaction(other, TransactionLock.AUDIT_CHAIN)


def test_settings_hold_for_the_transaction_only(engine: Engine, conn: Conn) -> None:
    before = {n: _setting(conn, n) for n in ("lock_timeout", "statement_timeout", "work_mem")}
    with conn.transaction():
        engine.session.batch_limits(conn, lock_timeout_ms=1234, statement_timeout_ms=5678)
        engine.session.whole_tables(conn, 7)
        engine.session.transaction_settings(conn, {"DateStyle": "ISO", "retention.p1": "x y"})
        assert _setting(conn, "lock_timeout") == "1234ms"
        assert _setting(conn, "statement_timeout") == "5678ms"
        assert _setting(conn, "max_parallel_workers_per_gather") == "0"
        assert _setting(conn, "work_mem") == "7MB"
        assert _setting(conn, "retention.p1") == "x y"
        engine.session.lock_timeout(conn, 0)
        assert _setting(conn, "lock_timeout") == "0"
    assert {n: _setting(conn, n) for n in before} == before


def test_autocommit_limits_hold_for_the_session(engine: Engine, conn: Conn) -> None:
    engine.session.autocommit_limits(conn, lock_timeout_ms=1234, statement_timeout_ms=5678)
    with conn.transaction():
        pass
    assert _setting(conn, "lock_timeout") == "1234ms"
    assert _setting(conn, "statement_timeout") == "5678ms"


def test_in_transaction_tells_an_idle_session_from_one_in_a_transaction(
    engine: Engine, conn: Conn
) -> None:
    assert not engine.session.in_transaction(conn)
    with conn.transaction():
        assert engine.session.in_transaction(conn)
    conn.execute("BEGIN")
    with pytest.raises(errors.DataError):
        conn.execute("SELECT 1 / 0")
    assert engine.session.in_transaction(conn)  # failed, still to be rolled back
    conn.execute("ROLLBACK")
    assert not engine.session.in_transaction(conn)


def test_another_session_takes_the_pinned_settings(engine: Engine, conn: Conn, other: Conn) -> None:
    conn.execute("SET TimeZone = 'Pacific/Chatham'")
    conn.execute("SET search_path = pg_catalog, public")
    pinned = engine.session.pinned(conn)
    assert pinned == {"TimeZone": "Pacific/Chatham", "search_path": "pg_catalog, public"}
    engine.session.pin(other, pinned)
    with other.transaction():
        pass  # session-level: kept past a transaction
    assert engine.session.pinned(other) == pinned


def test_a_stream_reads_every_row_by_name_in_order(engine: Engine, conn: Conn) -> None:
    query = sql.SQL("SELECT g AS n, g::text AS t FROM generate_series(1, 250) AS g ORDER BY g")
    with conn.transaction(), engine.rows.stream(conn, query) as rows:
        read = list(rows)
    assert read == [{"n": n, "t": str(n)} for n in range(1, 251)]


def test_bulk_load_and_copy_between_sessions_keep_every_value(
    engine: Engine, conn: Conn, other: Conn
) -> None:
    from retention.engines.params import Json

    for c in (conn, other):
        c.execute("CREATE TEMPORARY TABLE t (id int, tags text[], doc jsonb, note text)")
    rows = [(1, ["a", "b,c"], Json({"k": [1, 2]}), None), (2, [], Json({}), "tab\there")]
    table = sql.Identifier("pg_temp", "t")
    assert engine.bulk.load(conn, table, ("id", "tags", "doc", "note"), iter(rows)) == 2
    engine.bulk.copy_between(conn, other, table)
    expected = [(1, ["a", "b,c"], {"k": [1, 2]}, None), (2, [], {}, "tab\there")]
    for c in (conn, other):
        assert c.execute("SELECT * FROM pg_temp.t ORDER BY id").fetchall() == expected


def test_a_helper_reads_the_exported_snapshot_not_later_commits(
    engine: Engine, conn: Conn, other: Conn, db_url: str
) -> None:
    conn.execute("CREATE TABLE t (id int)")
    conn.execute("INSERT INTO t VALUES (1)")
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot = engine.snapshots.export(conn)
        with psycopg.connect(db_url, autocommit=True) as writer:
            writer.execute("INSERT INTO t VALUES (2)")
        engine.snapshots.join(other, snapshot)
        try:
            assert other.execute("SELECT count(*) FROM t").fetchone() == (1,)
        finally:
            other.execute("ROLLBACK")
    assert other.execute("SELECT count(*) FROM t").fetchone() == (2,)
    with pytest.raises(errors.Error):  # its transaction has ended
        engine.snapshots.join(other, snapshot)
    other.execute("ROLLBACK")


def test_the_shipped_migrations_are_numbered_and_apply_once(engine: Engine, conn: Conn) -> None:
    shipped = engine.own_schema.migrations()
    assert [m.version for m in shipped] == list(range(1, len(shipped) + 1))
    assert all(m.name.startswith(f"{m.version:03d}_") for m in shipped)
    assert engine.own_schema.migrate(conn, "rt_own") == [m.name for m in shipped]
    assert engine.own_schema.migrate(conn, "rt_own") == []
    row = conn.execute("SELECT count(*) FROM rt_own.schema_version").fetchone()
    assert row == (len(shipped),)


def test_the_migrations_ship_with_the_package() -> None:
    """pyproject's package data names every migration file (a wheel or `pip install .`
    carries only what it names)."""
    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["retention"]
    package = root / "retention"
    sql_files = sorted(p.relative_to(package).as_posix() for p in package.rglob("*.sql"))
    assert sql_files, "no migration found"
    unshipped = [f for f in sql_files if not any(fnmatch.fnmatch(f, g) for g in patterns)]
    assert unshipped == []


def test_fresh_database_replaces_the_named_database(pg_admin_url: str) -> None:
    name = _new_name("fresh_")
    try:
        session = engine_for(pg_admin_url).session
        url = session.fresh_database(pg_admin_url, name)
        with psycopg.connect(url, autocommit=True) as first:
            assert first.info.dbname == name
            first.execute("CREATE TABLE left_over (id int)")
            # its sessions are ended (WITH FORCE), this one included
            again = session.fresh_database(pg_admin_url, name)
        with psycopg.connect(again, autocommit=True) as second:
            row = second.execute("SELECT to_regclass('left_over') IS NULL").fetchone()
            assert row == (True,)
    finally:
        _drop_database(pg_admin_url, name)
