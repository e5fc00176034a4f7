"""MariaDB's side of the engine seam (session, locks, rows): they behave as their callers rely
on, as PostgreSQL's do (tests/test_engine_postgresql.py), on a real server.

The server is shared: every observation is of this test's own sessions (by connection id) and
databases (fresh ones, named by fix_mariadb), and lock names hold those databases' names.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import suppress
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from retention.db import connect
from retention.engines import Connection, Engine, engine_for, engine_of, errors, sql
from retention.engines.locks import TransactionLock
from retention.engines.mariadb.locks import run_lock_name
from retention.errors import DatabaseError
from retention.settings import Settings
from tests.fix_mariadb import _admin, _new_name, server_is_mysql, with_database

_LIMITS = ("innodb_lock_wait_timeout", "lock_wait_timeout", "max_statement_time")


@pytest.fixture
def engine(mariadb_conn: Connection) -> Engine:
    return engine_of(mariadb_conn)


@pytest.fixture
def other(mariadb_url: str) -> Iterator[Connection]:
    with connect(Settings(), url=mariadb_url) as second:
        yield second


@pytest.fixture
def database(mariadb_conn: Connection) -> str:
    return str(mariadb_conn.execute("SELECT DATABASE()").fetchone()[0])


def _another_database(admin_url: str, name: str) -> Iterator[str]:
    admin = _admin(admin_url)
    try:
        admin.cursor().execute(f"CREATE DATABASE `{name}`")
        yield with_database(admin_url, name)
    finally:
        with suppress(Exception):
            admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def elsewhere(mariadb_admin_url: str) -> Iterator[str]:
    yield from _another_database(mariadb_admin_url, _new_name())


def _values(conn: Connection, names: tuple[str, ...] = _LIMITS) -> dict[str, Any]:
    row = conn.execute("SELECT " + ", ".join(f"@@SESSION.{n}" for n in names)).fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def _locks_table(conn: Connection, schema: str, *names: str) -> None:
    """The tool's `locks` table (migration 002 of branch mariadb-schema, not on main yet)."""
    table = sql.Identifier(schema, "locks")
    conn.execute(
        sql.SQL("CREATE TABLE {} (name VARCHAR(64) NOT NULL PRIMARY KEY) ENGINE=InnoDB").format(
            table
        )
    )
    for name in names:
        conn.execute(sql.SQL("INSERT INTO {} (name) VALUES (%s)").format(table), (name,))


# -- the run lock ----------------------------------------------------------------------------


def test_the_run_lock_admits_one_session_and_names_its_holder(
    engine: Engine, mariadb_conn: Connection, other: Connection
) -> None:
    locks = engine.locks
    assert locks.run_lock_holder(other) is None
    assert locks.try_run_lock(mariadb_conn)
    assert not locks.try_run_lock(other)
    holder = locks.run_lock_holder(other)
    assert holder is not None
    assert holder.session_id == mariadb_conn.info.backend_pid
    assert holder.host is not None  # root sees every session's host (PROCESS privilege)
    assert holder.since is None  # PROCESSLIST has no session start (locks.py)
    locks.release_run_lock(mariadb_conn)
    assert locks.run_lock_holder(other) is None
    assert locks.try_run_lock(other)
    assert not locks.try_run_lock(mariadb_conn)
    locks.release_run_lock(other)


def test_a_run_on_another_database_neither_holds_nor_names_this_ones_lock(
    engine: Engine, mariadb_conn: Connection, elsewhere: str
) -> None:
    with connect(Settings(), url=elsewhere) as there:
        assert engine.locks.try_run_lock(there)
        assert engine.locks.run_lock_holder(mariadb_conn) is None
        assert engine.locks.try_run_lock(mariadb_conn)


def test_the_run_lock_survives_commits_and_ends_with_its_session(
    engine: Engine, mariadb_url: str, other: Connection
) -> None:
    with connect(Settings(), url=mariadb_url) as first:
        assert engine.locks.try_run_lock(first)
        with first.transaction():
            first.execute("SELECT 1").fetchall()
        with pytest.raises(ZeroDivisionError), first.transaction():
            raise ZeroDivisionError  # a rolled-back transaction keeps it too
        assert not engine.locks.try_run_lock(other)
    # the server ends a closed session on its own time: wait for it (bounded)
    for _ in range(600):
        if engine.locks.try_run_lock(other):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the run lock outlived its session")


def test_a_long_database_name_gives_a_lock_name_of_64_characters_at_most(
    engine: Engine, mariadb_admin_url: str
) -> None:
    assert run_lock_name("db") == "retention.run.db"
    long_name = (_new_name() + "_" + "x" * 64)[:64]
    name = run_lock_name(long_name)
    assert len(name) <= 64
    assert name != run_lock_name(long_name[:-1] + "y")  # the digest tells them apart
    for url in _another_database(mariadb_admin_url, long_name):
        with connect(Settings(), url=url) as first, connect(Settings(), url=url) as second:
            assert engine.locks.try_run_lock(first)
            assert not engine.locks.try_run_lock(second)
            row = second.execute("SELECT IS_USED_LOCK(%s)", (name,)).fetchone()
            assert row == (first.info.backend_pid,)


def test_the_run_lock_needs_a_database(engine: Engine, mariadb_admin_url: str) -> None:
    with (
        connect(Settings(), url=mariadb_admin_url) as nowhere,
        pytest.raises(DatabaseError, match="no database"),
    ):
        engine.locks.try_run_lock(nowhere)


# -- transaction locks -----------------------------------------------------------------------


def test_a_transaction_lock_waits_for_the_holders_commit(
    engine: Engine, mariadb_conn: Connection, other: Connection, database: str
) -> None:
    _locks_table(mariadb_conn, database, TransactionLock.AUDIT_CHAIN.value)
    chain = TransactionLock.AUDIT_CHAIN
    with mariadb_conn.transaction():
        engine.locks.lock_in_transaction(mariadb_conn, chain, schema=database)
        with pytest.raises(errors.LockNotAvailable), other.transaction():
            engine.session.lock_timeout(other, 50)  # one second: the server's least
            engine.locks.lock_in_transaction(other, chain, schema=database)
    with other.transaction():
        engine.locks.lock_in_transaction(other, chain, schema=database)
    # the run lock is not a transaction lock: taking it waits for nothing here
    assert engine.locks.try_run_lock(other)


def test_a_transaction_lock_is_refused_clearly_where_it_cannot_hold(
    engine: Engine, mariadb_conn: Connection, database: str
) -> None:
    locks = engine.locks
    with pytest.raises(psycopg.ProgrammingError, match="transaction"):
        locks.lock_in_transaction(mariadb_conn, TransactionLock.AUDIT_CHAIN, schema=database)
    with pytest.raises(psycopg.ProgrammingError, match="named lock"), mariadb_conn.transaction():
        locks.lock_in_transaction(mariadb_conn, TransactionLock.MIGRATIONS, schema=database)
    with pytest.raises(errors.UndefinedTable), mariadb_conn.transaction():
        locks.lock_in_transaction(mariadb_conn, TransactionLock.AUDIT_CHAIN, schema=database)
    _locks_table(mariadb_conn, database)  # without the chain's row: not locked, so refused
    with pytest.raises(DatabaseError, match="is missing from"), mariadb_conn.transaction():
        locks.lock_in_transaction(mariadb_conn, TransactionLock.AUDIT_CHAIN, schema=database)


# -- the session -----------------------------------------------------------------------------


@pytest.mark.mariadb_only("max_statement_time (MySQL: max_execution_time, SELECT only)")
def test_limits_hold_for_the_transaction_only_whether_it_commits_or_not(
    engine: Engine, mariadb_conn: Connection
) -> None:
    session = engine.session
    mariadb_conn.execute("SET SESSION innodb_lock_wait_timeout = 17, max_statement_time = 3.5")
    names = (*_LIMITS, "div_precision_increment", "optimizer_switch")
    before = _values(mariadb_conn, names)
    assert "split_materialized=on" in before["optimizer_switch"]
    with mariadb_conn.transaction():
        session.batch_limits(mariadb_conn, lock_timeout_ms=1234, statement_timeout_ms=5678)
        session.whole_tables(mariadb_conn, 7)  # no equivalent: changes nothing
        session.transaction_settings(mariadb_conn, {"div_precision_increment": "9"})
        assert _values(mariadb_conn, (*_LIMITS, "div_precision_increment")) == {
            "innodb_lock_wait_timeout": 2,  # whole seconds, rounded up
            "lock_wait_timeout": 2,
            "max_statement_time": pytest.approx(5.678),
            "div_precision_increment": 9,
        }
        session.lock_timeout(mariadb_conn, 0)  # without limit
        assert _values(mariadb_conn)["innodb_lock_wait_timeout"] == 100_000_000
    assert _values(mariadb_conn, names) == before
    with pytest.raises(ZeroDivisionError), mariadb_conn.transaction():
        session.batch_limits(mariadb_conn, lock_timeout_ms=1, statement_timeout_ms=0)
        assert _values(mariadb_conn)["innodb_lock_wait_timeout"] == 1
        assert _values(mariadb_conn)["max_statement_time"] == 0
        raise ZeroDivisionError
    assert _values(mariadb_conn, names) == before
    assert before["max_statement_time"] == Decimal("3.5") or before["max_statement_time"] == 3.5


def test_autocommit_limits_hold_for_the_session_and_bound_a_table_lock_wait(
    engine: Engine, mariadb_conn: Connection, other: Connection
) -> None:
    """The aside connection of tables without transactions (retention.actions.base.Aside):
    its statements each commit by themselves, so its limits are the session's; a MyISAM
    table locked by the application makes its change fail after the bound, not wait on."""
    engine.session.autocommit_limits(mariadb_conn, lock_timeout_ms=1200, statement_timeout_ms=9000)
    statement = {"max_execution_time": 9000} if server_is_mysql() else {"max_statement_time": 9}
    expected = {"innodb_lock_wait_timeout": 2, "lock_wait_timeout": 2, **statement}
    with mariadb_conn.transaction():
        pass
    assert _values(mariadb_conn, tuple(expected)) == pytest.approx(expected)
    mariadb_conn.execute("CREATE TABLE m (k INT PRIMARY KEY) ENGINE=MyISAM")
    mariadb_conn.execute("INSERT INTO m VALUES (1)")
    other.execute("LOCK TABLES m WRITE")
    try:
        with pytest.raises(errors.LockNotAvailable):
            mariadb_conn.execute("DELETE FROM m WHERE k = 1")
    finally:
        other.execute("UNLOCK TABLES")
    assert mariadb_conn.execute("SELECT k FROM m").fetchall() == [(1,)]


@pytest.mark.mariadb_only("max_statement_time (MySQL: max_execution_time, SELECT only)")
def test_limits_outside_a_transaction_are_refused(engine: Engine, mariadb_conn: Connection) -> None:
    before = _values(mariadb_conn)
    with pytest.raises(psycopg.ProgrammingError, match="transaction"):
        engine.session.batch_limits(mariadb_conn, lock_timeout_ms=1000, statement_timeout_ms=1)
    with pytest.raises(psycopg.ProgrammingError, match="variable"), mariadb_conn.transaction():
        engine.session.transaction_settings(mariadb_conn, {"x = 1; DROP": "1"})
    assert _values(mariadb_conn) == before


@pytest.mark.mariadb_only("max_statement_time (MySQL: max_execution_time, SELECT only)")
def test_the_statement_limit_stops_a_statement_and_the_lock_limit_a_wait(
    engine: Engine, mariadb_conn: Connection, other: Connection
) -> None:
    mariadb_conn.execute("CREATE TABLE t (k INT PRIMARY KEY) ENGINE=InnoDB")
    mariadb_conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(errors.QueryCanceled), mariadb_conn.transaction():
        engine.session.batch_limits(mariadb_conn, lock_timeout_ms=1000, statement_timeout_ms=200)
        mariadb_conn.execute("SELECT SLEEP(5)").fetchall()
    with other.transaction():
        other.execute("SELECT k FROM t WHERE k = 1 FOR UPDATE").fetchall()
        with pytest.raises(errors.LockNotAvailable), mariadb_conn.transaction():
            engine.session.batch_limits(mariadb_conn, lock_timeout_ms=1, statement_timeout_ms=0)
            mariadb_conn.execute("UPDATE t SET k = 2 WHERE k = 1")
    assert mariadb_conn.execute("SELECT k FROM t").fetchall() == [(1,)]


def test_in_transaction_tells_an_idle_session_from_one_in_a_transaction(
    engine: Engine, mariadb_conn: Connection
) -> None:
    session = engine.session
    assert not session.in_transaction(mariadb_conn)
    with mariadb_conn.transaction():
        assert session.in_transaction(mariadb_conn)
    assert not session.in_transaction(mariadb_conn)
    # a block that swallowed an error is rolled back at its end, and says so
    with pytest.raises(psycopg.errors.InFailedSqlTransaction), mariadb_conn.transaction():
        with pytest.raises(errors.UndefinedTable):
            mariadb_conn.execute("SELECT * FROM no_such_table")
        assert session.in_transaction(mariadb_conn)  # failed, still to be rolled back
    assert not session.in_transaction(mariadb_conn)


def test_another_session_takes_the_pinned_settings(
    engine: Engine, mariadb_conn: Connection, other: Connection
) -> None:
    mariadb_conn.execute("SET SESSION time_zone = '+05:45'")
    pinned = engine.session.pinned(mariadb_conn)
    assert pinned["time_zone"] == "+05:45"
    assert "ANSI_QUOTES" not in pinned["sql_mode"]
    assert engine.session.pinned(other) != pinned
    engine.session.pin(other, pinned)
    with other.transaction():
        pass  # session-level: kept past a transaction
    assert engine.session.pinned(other) == pinned
    with pytest.raises(psycopg.ProgrammingError, match="pins"):
        engine.session.pin(other, {"autocommit": "0"})


def test_fresh_database_replaces_the_named_database(mariadb_admin_url: str) -> None:
    name = _new_name()
    session = engine_for(mariadb_admin_url).session
    try:
        url = session.fresh_database(mariadb_admin_url, name)
        with connect(Settings(), url=url) as first:
            assert first.execute("SELECT DATABASE()").fetchone() == (name,)
            first.execute("CREATE TABLE left_over (id INT)")
            charset = first.execute("SELECT @@character_set_database").fetchone()
            assert charset == ("utf8mb4",)
        again = session.fresh_database(mariadb_admin_url, name)
        with connect(Settings(), url=again) as second:
            tables = second.execute(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (name,)
            ).fetchone()
            assert tables == (0,)
    finally:
        admin = _admin(mariadb_admin_url)
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


# -- rows ------------------------------------------------------------------------------------


@pytest.mark.mariadb_only("MariaDB's SEQUENCE engine (seq_1_to_N)")
def test_a_stream_reads_every_row_by_name_in_order(
    engine: Engine, mariadb_conn: Connection
) -> None:
    query = sql.SQL(
        "SELECT seq AS n, CAST(seq AS CHAR) AS t FROM seq_1_to_250 ORDER BY seq"
    )  # MariaDB's sequence engine
    with mariadb_conn.transaction(), engine.rows.stream(mariadb_conn, query) as rows:
        read = list(rows)
    assert read == [{"n": n, "t": str(n)} for n in range(1, 251)]


@pytest.mark.mariadb_only("MariaDB's SEQUENCE engine (seq_1_to_N)")
def test_nothing_else_runs_on_the_connection_while_a_stream_is_read(
    engine: Engine, mariadb_conn: Connection
) -> None:
    query = sql.SQL("SELECT seq AS n FROM seq_1_to_10000 WHERE seq > %s ORDER BY seq")
    with mariadb_conn.transaction():
        with engine.rows.stream(mariadb_conn, query, (5,)) as rows:
            assert next(rows) == {"n": 6}
            with pytest.raises(psycopg.ProgrammingError, match="streaming"):
                mariadb_conn.execute("SELECT 1")
        # left early: the rest was read away, the connection is free again
        assert mariadb_conn.execute("SELECT 1").fetchone() == (1,)


# -- parameters --------------------------------------------------------------------------------


@pytest.mark.mariadb_only("JSON_VALUE of a parameter")
def test_json_documents_travel_as_json_text_and_lists_are_refused(
    mariadb_conn: Connection,
) -> None:
    from datetime import date

    from retention.engines.params import Json

    row = mariadb_conn.execute(
        "SELECT JSON_VALUE(%s, '$.a.b'), JSON_LENGTH(%s)",
        (Json({"a": {"b": "é"}}), Json(["x", "y", "z"])),
    ).fetchone()
    assert row == ("é", 3)
    with pytest.raises(psycopg.ProgrammingError, match="not JSON"):
        mariadb_conn.execute("SELECT %s", (Json([date(2000, 1, 1)]),))
    with pytest.raises(psycopg.ProgrammingError, match="cannot adapt type 'list'"):
        mariadb_conn.execute("SELECT %s", (["x"],))


@pytest.mark.mariadb_only("max_statement_time (MySQL: max_execution_time, SELECT only)")
def test_limits_set_in_a_nested_block_hold_until_the_outermost_ends(
    engine: Engine, mariadb_conn: Connection
) -> None:
    before = _values(mariadb_conn)
    with mariadb_conn.transaction():
        with mariadb_conn.transaction():  # a savepoint
            engine.session.batch_limits(mariadb_conn, lock_timeout_ms=3000, statement_timeout_ms=1)
        assert _values(mariadb_conn)["innodb_lock_wait_timeout"] == 3
        engine.session.lock_timeout(mariadb_conn, 4500)
        assert _values(mariadb_conn)["innodb_lock_wait_timeout"] == 5
    assert _values(mariadb_conn) == before


def test_a_lost_connection_ends_the_block_with_its_own_error(
    engine: Engine, mariadb_conn: Connection, mariadb_admin_url: str
) -> None:
    """Nothing to put back once the session is gone: the loss is what the caller sees."""
    admin = _admin(mariadb_admin_url)
    try:
        with pytest.raises(psycopg.OperationalError), mariadb_conn.transaction():
            engine.session.batch_limits(mariadb_conn, lock_timeout_ms=1000, statement_timeout_ms=0)
            admin.cursor().execute(f"KILL CONNECTION {int(mariadb_conn.info.backend_pid)}")
            mariadb_conn.execute("SELECT 1").fetchall()
    finally:
        admin.close()
    assert mariadb_conn.closed
    assert engine.connection_lost(mariadb_conn, psycopg.OperationalError())
