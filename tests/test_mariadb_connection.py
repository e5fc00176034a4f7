"""The MariaDB engine's connection (issue 20's foundation), against the real server.

SQL composed with psycopg.sql renders as MariaDB SQL (backticks, values as parameters), the
connection behaves as the tool's callers expect from psycopg (matched row counts, PostgreSQL's
transaction rules, errors in SQL's standard classes, cancel from another connection), and
nothing secret or personal leaks into `info.dsn` or an error message.
"""

from __future__ import annotations

import gc
import itertools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from psycopg import errors as pg
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from retention import db
from retention.engines import Connection, engine_for, engine_of, sql
from retention.engines.errors import describe_error
from retention.engines.mariadb import ENGINE
from retention.engines.mariadb.connection import MariaDBConnection
from retention.engines.mariadb.errors import errno_of, server_sqlstate_of
from retention.engines.mariadb.render import bind, driver_placeholders, render
from retention.engines.postgresql import ENGINE as POSTGRESQL
from retention.errors import DatabaseError, server_text_is_safe
from retention.settings import Settings
from tests.fix_mariadb import sessions, with_database

SETTINGS = Settings()
_users = itertools.count(1)


def _connect(url: str) -> MariaDBConnection:
    conn = db.connect(SETTINGS, url=url)
    assert isinstance(conn, MariaDBConnection)
    return conn


def _takes_a_connection(conn: Connection) -> Connection:
    """mypy --strict checks that a MariaDBConnection is a `Connection` where one is expected."""
    return conn


def _table(conn: MariaDBConnection, rows: int = 2) -> None:
    conn.execute("CREATE TABLE t (k INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB")
    conn.cursor().executemany("INSERT INTO t VALUES (%s, 5)", [[k] for k in range(1, rows + 1)])


def _values(conn: MariaDBConnection) -> list[Any]:
    return conn.execute("SELECT k, v FROM t ORDER BY k").fetchall()


# how long another session may take to get somewhere: generous, as the machine may be loaded;
# only a failing test waits that long
PATIENCE = 120.0


def _until(condition: Callable[[], bool], seconds: float = PATIENCE) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the other session never got there"
        time.sleep(0.05)


def _running(watcher: MariaDBConnection, session_id: int, statement: str) -> bool:
    """The session runs `statement` now (information_schema.PROCESSLIST is read live: unlike
    INNODB_TRX, whose cache the server refreshes only after 100 ms without any reader on the
    whole server, so that polling it, or anyone else's polling, keeps it stale)."""
    table, session, info = sessions()
    query = f"SELECT COUNT(*) FROM {table} WHERE {session} = %s AND {info} = %s"
    return bool(watcher.execute(query, [session_id, statement]).fetchone()[0])


# -- rendering ---------------------------------------------------------------------------------


def test_identifiers_are_backticked_a_backtick_doubled_and_qualified_names_dotted() -> None:
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.Identifier("we`ird"), sql.Identifier("db", "tab le")
    )
    assert render(query, None).text == "SELECT `we``ird` FROM `db`.`tab le`"


def test_a_name_with_an_odd_quote_is_followed_by_a_comment_restoring_the_driver_state() -> None:
    rendered = render(sql.SQL("SELECT {} = %s").format(sql.Identifier("o'brien")), [1])
    assert rendered.text == "SELECT `o'brien`/*'*/  = ?"
    assert driver_placeholders(rendered.text) == [len(rendered.text) - 1]


def test_a_long_statement_is_rendered_once_while_its_object_lives() -> None:
    """The re-check and the archive's DELETE run one composed object batch after batch: its
    text is rendered once; another object, or another way of reading `%`, is rendered anew, and
    the object's entry goes with it."""
    from retention.engines.mariadb import render as module

    def long() -> sql.Composed:
        return sql.SQL("SELECT {} FROM t WHERE k IN ({}) AND n = {}").format(
            sql.Identifier("k"),
            sql.SQL(", ").join(sql.Placeholder() * 400),
            sql.Literal("a'b"),
        )

    query, values = long(), list(range(400))
    first = render(query, values)
    assert render(query, values) is first
    assert bind(first, values) == (*values, "a'b")
    with pytest.raises(psycopg.ProgrammingError):
        render(query, values[:-1])  # the parameters are still checked
    other = render(long(), values)
    assert other is not first and other == first
    with pytest.raises(psycopg.ProgrammingError, match="no parameters"):
        render(query, None)  # `%` not parsed: rendered apart, and refused
    short = sql.SQL("SELECT {}").format(sql.Identifier("k"))
    assert render(short, None) is not render(short, None)  # short: not kept
    key = id(query)
    assert key in module._RENDERED
    del query
    gc.collect()
    assert key not in module._RENDERED or module._RENDERED[key][0]() is not None


def test_a_name_with_a_nul_character_is_refused() -> None:
    with pytest.raises(psycopg.ProgrammingError, match="NUL"):
        render(sql.Identifier("a\x00b"), None)


def test_text_literals_become_parameters_never_text() -> None:
    hostile = "x'); DROP TABLE t; -- `\\"
    rendered = render(sql.SQL("SELECT {}").format(sql.Literal(hostile)), None)
    assert rendered.text == "SELECT ?"
    assert bind(rendered, None) == (hostile,)


def test_numbers_booleans_and_null_literals_are_written_as_sql() -> None:
    literals = [5, -1, 2.5, Decimal("-0.10"), True, False, None]
    query = sql.SQL("SELECT {}").format(sql.SQL(", ").join(map(sql.Literal, literals)))
    assert render(query, None).text == "SELECT 5,  -1, 2.5,  -0.10, TRUE, FALSE, NULL"


def test_a_nan_literal_is_refused() -> None:
    with pytest.raises(psycopg.ProgrammingError, match="NaN"):
        render(sql.Literal(float("nan")), None)


def test_positional_and_named_placeholders_become_question_marks_bound_in_order() -> None:
    named = render("SELECT %(a)s, %(b)s, %(a)s", {"a": 1, "b": 2})
    assert named.text == "SELECT ?, ?, ?"
    assert bind(named, {"a": 1, "b": 2, "unused": 3}) == (1, 2, 1)
    positional = render(sql.SQL("SELECT %s, {}, %b").format(sql.Literal("x")), ["p", "q"])
    assert bind(positional, ["p", "q"]) == ("p", "x", "q")


def test_placeholder_objects_by_name_and_position() -> None:
    by_name = sql.SQL("SELECT {}, {}").format(sql.Placeholder("x"), sql.Placeholder("y"))
    assert bind(render(by_name, {"x": 1, "y": 2}), {"x": 1, "y": 2}) == (1, 2)
    by_position = sql.SQL(", ").join(sql.Placeholder() * 3)
    assert bind(render(by_position, [1, 2, 3]), [1, 2, 3]) == (1, 2, 3)


def test_a_doubled_percent_is_one_with_parameters_and_untouched_without_them() -> None:
    assert render("SELECT 'a%%b', 7 %% 3, %s", [1]).text == "SELECT 'a%b', 7 % 3, ?"
    assert render("SELECT 7 % 3, 'a%%'", None).text == "SELECT 7 % 3, 'a%%'"


@pytest.mark.parametrize(
    ("query", "params", "error", "message"),
    [
        ("SELECT %s, %s", [1], psycopg.ProgrammingError, "2 placeholders but 1 parameters"),
        ("SELECT %(a)s, %(b)s", {"a": 1}, psycopg.ProgrammingError, "missing: b"),
        ("SELECT %s, %(a)s", {"a": 1}, psycopg.ProgrammingError, "cannot be mixed"),
        ("SELECT %s", {"a": 1}, TypeError, "require a sequence"),
        ("SELECT %(a)s", [1], TypeError, "require a mapping"),
        ("SELECT 7 % 3", [], psycopg.ProgrammingError, "double it"),
        ("SELECT %x", [], psycopg.ProgrammingError, "only '%s', '%b', '%t'"),
        ("SELECT %s", "a", TypeError, "sequence or a mapping"),
        ("SELECT %s", [[1, 2]], psycopg.ProgrammingError, "cannot adapt type 'list'"),
    ],
)
def test_parameters_that_do_not_fit_the_query_are_refused_as_psycopg_does(
    query: str, params: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        bind(render(query, params), params)


def test_a_placeholder_without_parameters_is_refused() -> None:
    with pytest.raises(psycopg.ProgrammingError, match="no parameters"):
        render(sql.SQL("SELECT {}").format(sql.Placeholder()), None)


def test_text_the_driver_would_read_differently_is_refused_before_it_is_sent() -> None:
    # inside '...' the driver's scanner toggles on the double quote and then misses the `?`
    with pytest.raises(psycopg.ProgrammingError, match="other placeholders"):
        render("SELECT 'say \"hi', %s", [1])
    with pytest.raises(psycopg.ProgrammingError, match="other placeholders"):
        render("SELECT 1 --\t%d\n", None)  # a comment for the server, not for the driver


_SCANNED = st.text(alphabet="'\"`?%sd()#-/* \n\\aé!M", min_size=1, max_size=40)


@pytest.fixture(scope="module")
def driver_cursor(mariadb_admin_url: str) -> Iterator[Any]:
    """A cursor of the driver itself, whose (private) scanner the port is compared with."""
    import mariadb

    from retention.engines.mariadb.target import parse_url

    raw = mariadb.connect(**parse_url(mariadb_admin_url).driver_kwargs())
    yield raw.cursor()
    raw.close()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(text=_SCANNED)
def test_the_port_of_the_driver_scanner_finds_what_the_driver_finds(
    driver_cursor: Any, text: str
) -> None:
    try:
        ours = driver_placeholders(text)
    except psycopg.ProgrammingError:
        assume(False)  # executable comments: refused by us, version-dependent in the driver
        return
    try:
        driver_cursor._parse(text)
    except Exception:  # the driver refuses mixed styles: we see more than `?`
        assert any(mark < 0 for mark in ours)
        return
    if driver_cursor._paramstyle in (0, 1):  # none, qmark
        assert ours == _chars(text, driver_cursor._paramlist)
    else:
        assert any(mark < 0 for mark in ours)


def _chars(text: str, byte_offsets: list[int]) -> list[int]:
    encoded = text.encode()
    return [len(encoded[:offset].decode()) for offset in byte_offsets]


# -- on the server -------------------------------------------------------------------------------

WEIRD = [
    "o'brien",
    'say "hi"',
    "we`ird",
    "é名",
    "what?",
    "100%s",
    "%(x)s",
    "#hash",
    "-- d",
    "/*c*/",
]


def test_weird_names_and_values_round_trip_through_the_server(mariadb_conn: Any) -> None:
    table = sql.Identifier("tab'le`x")
    columns = [sql.Identifier(name) for name in WEIRD]
    mariadb_conn.execute(
        sql.SQL("CREATE TABLE {} ({})").format(
            table, sql.SQL(", ").join(sql.SQL("{} TEXT").format(c) for c in columns)
        )
    )
    values = [f"{name} %s ? '\" ` \\ é" for name in WEIRD]
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        table, sql.SQL(", ").join(columns), sql.SQL(", ").join(sql.Placeholder() * len(WEIRD))
    )
    assert mariadb_conn.execute(insert, values).rowcount == 1
    select = sql.SQL("SELECT {} FROM {} WHERE {} = %(v)s").format(
        sql.SQL(", ").join(columns), table, columns[0]
    )
    with mariadb_conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(select, {"v": values[0]}).fetchone()
    assert row == dict(zip(WEIRD, values, strict=True))


def test_percent_in_sql_text_with_and_without_parameters(mariadb_conn: Any) -> None:
    assert mariadb_conn.execute("SELECT 7 %% 3, 'abc' LIKE 'a%%', %s", [1]).fetchone() == (
        1,
        1,
        1,
    )
    assert mariadb_conn.execute("SELECT 7 % 3, 'a%%'").fetchone() == (1, "a%%")


@pytest.mark.mariadb_only("reads @@tx_isolation (MySQL 8: @@transaction_isolation)")
def test_the_session_is_pinned_at_connect(mariadb_conn: Any) -> None:
    row = mariadb_conn.execute(
        "SELECT @@session.time_zone, @@session.sql_mode, @@session.tx_isolation, "
        "@@character_set_client, @@character_set_results, @@autocommit"
    ).fetchone()
    assert row == (
        "+00:00",
        "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
        "READ-COMMITTED",
        "utf8mb4",
        "utf8mb4",
        1,
    )


@pytest.mark.mariadb_only("the engine object of a MariaDB server")
def test_a_connection_is_a_connection_of_the_seam_and_of_this_engine(mariadb_conn: Any) -> None:
    assert isinstance(_takes_a_connection(mariadb_conn), Connection)
    assert engine_of(mariadb_conn) is ENGINE
    assert engine_for("mariadb://u@h/db") is ENGINE
    assert engine_for("mysql://u@h:3307/db") is ENGINE
    assert (ENGINE.name, ENGINE.schemes) == ("mariadb", ("mariadb", "mysql"))
    assert not POSTGRESQL.owns(mariadb_conn)


def test_the_engine_does_not_own_a_postgresql_connection(conn: psycopg.Connection[Any]) -> None:
    assert not ENGINE.owns(conn)
    assert engine_of(conn) is POSTGRESQL


@pytest.mark.mariadb_only("a MariaDB version number")
def test_info_says_what_psycopg_says(mariadb_conn: Any) -> None:
    info = mariadb_conn.info
    (session_id, database) = mariadb_conn.execute("SELECT CONNECTION_ID(), DATABASE()").fetchone()
    assert (info.dbname, info.backend_pid, info.encoding) == (database, session_id, "utf-8")
    assert info.server_version >= 100600
    assert info.dsn.endswith(f"/{database}") and engine_for(info.dsn) is ENGINE
    assert info.parameter_status("server_encoding") is None


def test_rowcount_is_rows_matched_not_rows_changed(mariadb_conn: Any) -> None:
    _table(mariadb_conn, rows=3)
    assert mariadb_conn.execute("UPDATE t SET v = 5").rowcount == 3  # all already 5
    assert mariadb_conn.execute("UPDATE t SET v = 6 WHERE k > %s", [1]).rowcount == 2
    assert mariadb_conn.execute("SELECT k FROM t").rowcount == 3
    assert mariadb_conn.execute("DELETE FROM t WHERE k = %s", [9]).rowcount == 0


def test_executemany_sends_every_row_and_counts_them(mariadb_conn: Any) -> None:
    _table(mariadb_conn, rows=0)
    cur = mariadb_conn.cursor()
    cur.executemany("INSERT INTO t VALUES (%(k)s, %(v)s)", [{"k": k, "v": k * 2} for k in (1, 2)])
    assert cur.rowcount == 2
    cur.executemany("UPDATE t SET v = %s WHERE k = %s", [(0, 1), (0, 2)])
    assert (cur.rowcount, _values(mariadb_conn)) == (2, [(1, 0), (2, 0)])


def test_rows_as_tuples_or_dicts_by_one_by_many_or_by_iteration(mariadb_conn: Any) -> None:
    _table(mariadb_conn, rows=3)
    assert list(mariadb_conn.execute("SELECT k FROM t ORDER BY k")) == [(1,), (2,), (3,)]
    with mariadb_conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT k, v AS value FROM t ORDER BY k")
        assert [c.name for c in cur.description] == ["k", "value"]
        assert cur.fetchone() == {"k": 1, "value": 5}
        assert cur.fetchmany(1) == [{"k": 2, "value": 5}]
        assert cur.fetchall() == [{"k": 3, "value": 5}]
        assert cur.fetchone() is None


def test_a_named_cursor_streams_and_holds_the_connection_until_read(mariadb_conn: Any) -> None:
    _table(mariadb_conn, rows=3)
    with mariadb_conn.transaction(), mariadb_conn.cursor(name="stream") as cur:
        cur.execute("SELECT k FROM t ORDER BY k")
        assert mariadb_conn.info.transaction_status == TransactionStatus.ACTIVE
        with pytest.raises(psycopg.ProgrammingError, match="streaming"):
            mariadb_conn.execute("SELECT 1")
        assert (cur.fetchmany(2), cur.fetchmany(2)) == ([(1,), (2,)], [(3,)])
        assert mariadb_conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("rows", [0, 5, 6, 7])
def test_iterating_a_named_cursor_reads_chunks_and_every_row_once(
    mariadb_conn: Any, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    """Iteration reads ITER_ROWS rows per call into the driver (here 3: an empty result, a
    last chunk short or full, or one row more); every row once, in order, then the
    connection is free again."""
    from retention.engines.mariadb import cursor as cursor_module

    monkeypatch.setattr(cursor_module, "ITER_ROWS", 3)
    _table(mariadb_conn, rows=rows)
    asked: list[int] = []
    with mariadb_conn.cursor(name="stream") as cur:
        real = cur.fetchmany

        def counted(size: int = 0) -> list[Any]:
            asked.append(size)
            return list(real(size))

        cur.fetchmany = counted
        cur.execute("SELECT k FROM t ORDER BY k")
        assert list(cur) == [(k,) for k in range(1, rows + 1)]
    assert asked and set(asked) == {3}
    assert len(asked) == rows // 3 + 1
    assert mariadb_conn.execute("SELECT COUNT(*) FROM t").fetchone() == (rows,)


def test_a_named_cursor_dropped_unread_frees_the_connection(mariadb_conn: Any) -> None:
    _table(mariadb_conn, rows=3)
    cur = mariadb_conn.cursor(name="stream")
    cur.execute("SELECT k FROM t ORDER BY k")
    assert cur.fetchone() == (1,)
    del cur
    assert mariadb_conn.execute("SELECT COUNT(*) FROM t").fetchone() == (3,)


def test_the_text_protocol_escapes_values_and_refuses_to_read_dates(mariadb_conn: Any) -> None:
    hostile = "x'); DROP TABLE t; -- ` \\ \" é"
    assert mariadb_conn.execute("SELECT %s", [hostile], prepare=False).fetchone() == (hostile,)
    with pytest.raises(psycopg.NotSupportedError, match="zero date"):
        mariadb_conn.execute("SELECT CURRENT_DATE", prepare=False)


def test_copy_and_other_row_factories_say_they_are_not_supported(mariadb_conn: Any) -> None:
    with pytest.raises(psycopg.NotSupportedError, match="COPY"):
        mariadb_conn.cursor().copy("COPY t FROM STDIN")
    with pytest.raises(psycopg.NotSupportedError, match="row_factory"):
        mariadb_conn.cursor(row_factory=psycopg.rows.namedtuple_row)


# -- transactions --------------------------------------------------------------------------------


def test_a_transaction_commits_at_the_end_of_its_block(mariadb_conn: Any, mariadb_url: str) -> None:
    _table(mariadb_conn)
    with mariadb_conn.transaction():
        mariadb_conn.execute("UPDATE t SET v = 1 WHERE k = 1")
        assert mariadb_conn.info.transaction_status == TransactionStatus.INTRANS
    with _connect(mariadb_url) as other:
        assert _values(other) == [(1, 1), (2, 5)]
    assert mariadb_conn.info.transaction_status == TransactionStatus.IDLE


def test_any_exception_rolls_the_transaction_back(mariadb_conn: Any) -> None:
    _table(mariadb_conn)
    with pytest.raises(KeyError), mariadb_conn.transaction():
        mariadb_conn.execute("UPDATE t SET v = 1")
        raise KeyError("not a database error")
    assert _values(mariadb_conn) == [(1, 5), (2, 5)]
    assert mariadb_conn.info.transaction_status == TransactionStatus.IDLE


def test_an_exception_while_a_named_cursor_is_read_rolls_the_block_back(
    mariadb_conn: Any, mariadb_url: str
) -> None:
    """The stream is given up and ROLLBACK sent: the block's changes never reach the table,
    not even through a later implicit commit (DDL) of a transaction left open."""
    _table(mariadb_conn, rows=3)
    with pytest.raises(KeyError), mariadb_conn.transaction():
        mariadb_conn.execute("DELETE FROM t WHERE k = 1")
        cur = mariadb_conn.cursor(name="stream")
        for _row in cur.execute("SELECT k FROM t"):
            raise KeyError("processing a row failed")
    assert mariadb_conn.info.transaction_status == TransactionStatus.IDLE
    with mariadb_conn.transaction():
        mariadb_conn.execute("UPDATE t SET v = 6 WHERE k = 2")
    mariadb_conn.execute("CREATE TABLE u (x INT)")  # an implicit commit
    with _connect(mariadb_url) as other:
        assert _values(other) == [(1, 5), (2, 6), (3, 5)]
    assert cur._raw is None


def test_a_block_ending_with_a_named_cursor_unread_closes_it_and_commits(
    mariadb_conn: Any, mariadb_url: str
) -> None:
    """As psycopg's named cursors (WITHOUT HOLD), the stream ends with its transaction."""
    _table(mariadb_conn, rows=3)
    with mariadb_conn.transaction():
        mariadb_conn.execute("DELETE FROM t WHERE k = 1")
        cur = mariadb_conn.cursor(name="stream")
        assert cur.execute("SELECT k FROM t ORDER BY k").fetchone() == (2,)
    assert mariadb_conn.info.transaction_status == TransactionStatus.IDLE
    with _connect(mariadb_url) as other:
        assert _values(other) == [(2, 5), (3, 5)]
    assert cur.fetchone() is None


def test_force_rollback_and_rollback_exceptions(mariadb_conn: Any) -> None:
    _table(mariadb_conn)
    with mariadb_conn.transaction(force_rollback=True):
        mariadb_conn.execute("UPDATE t SET v = 1")
    with mariadb_conn.transaction():
        mariadb_conn.execute("UPDATE t SET v = 2")
        raise psycopg.Rollback()
    assert _values(mariadb_conn) == [(1, 5), (2, 5)]


def test_a_nested_block_is_a_savepoint(mariadb_conn: Any) -> None:
    _table(mariadb_conn)
    with mariadb_conn.transaction():
        mariadb_conn.execute("UPDATE t SET v = 1 WHERE k = 1")
        with pytest.raises(ValueError), mariadb_conn.transaction() as inner:
            assert inner.savepoint_name
            mariadb_conn.execute("UPDATE t SET v = 1 WHERE k = 2")
            raise ValueError("undo the inner block only")
    assert _values(mariadb_conn) == [(1, 1), (2, 5)]


def test_a_failed_statement_in_a_savepoint_leaves_the_outer_block_usable(
    mariadb_conn: Any,
) -> None:
    _table(mariadb_conn)
    with mariadb_conn.transaction():
        mariadb_conn.execute("UPDATE t SET v = 1 WHERE k = 1")
        with pytest.raises(pg.UniqueViolation), mariadb_conn.transaction():
            mariadb_conn.execute("INSERT INTO t VALUES (1, 0)")
        mariadb_conn.execute("UPDATE t SET v = 1 WHERE k = 2")
    assert _values(mariadb_conn) == [(1, 1), (2, 1)]


@pytest.mark.mariadb_only("SET STATEMENT ... FOR")
def test_after_a_lock_wait_timeout_the_block_is_aborted_and_rolled_back(
    mariadb_conn: Any, mariadb_url: str
) -> None:
    """MariaDB rolls back only the statement that timed out: the engine rolls back the rest."""
    _table(mariadb_conn)
    with _connect(mariadb_url) as holder, holder.transaction():
        holder.execute("SELECT v FROM t WHERE k = 2 FOR UPDATE")
        with pytest.raises(pg.LockNotAvailable) as caught, mariadb_conn.transaction():
            mariadb_conn.execute("UPDATE t SET v = 1 WHERE k = 1")
            try:
                mariadb_conn.execute(
                    "SET STATEMENT innodb_lock_wait_timeout = 1 FOR UPDATE t SET v = 1 WHERE k = 2"
                )
            finally:
                assert mariadb_conn.info.transaction_status == TransactionStatus.INERROR
                with pytest.raises(pg.InFailedSqlTransaction):
                    mariadb_conn.execute("UPDATE t SET v = 1 WHERE k = 1")
    assert caught.value.sqlstate == "55P03" and errno_of(caught.value) == 1205
    assert mariadb_conn.info.transaction_status == TransactionStatus.IDLE
    assert _values(mariadb_conn) == [(1, 5), (2, 5)]


def test_a_block_that_swallowed_an_error_is_rolled_back_not_committed(
    mariadb_conn: Any,
) -> None:
    _table(mariadb_conn)
    with (
        pytest.raises(pg.InFailedSqlTransaction, match="not committed"),
        mariadb_conn.transaction(),
    ):
        mariadb_conn.execute("UPDATE t SET v = 1 WHERE k = 1")
        with pytest.raises(pg.UniqueViolation):
            mariadb_conn.execute("INSERT INTO t VALUES (2, 0)")
    assert _values(mariadb_conn) == [(1, 5), (2, 5)]


def test_a_deadlock_aborts_the_block_of_its_victim(mariadb_conn: Any, mariadb_url: str) -> None:
    """The server rolls the victim's whole transaction back: its block must not go on."""
    _table(mariadb_conn)
    errors: list[BaseException] = []
    first_locked, second_locked = threading.Event(), threading.Event()
    crossing = "UPDATE t SET v = 1 WHERE k = 2"

    def first(conn: MariaDBConnection) -> None:
        try:
            with conn.transaction():
                conn.execute("UPDATE t SET v = 1 WHERE k = 1")
                first_locked.set()
                second_locked.wait(PATIENCE)
                conn.execute(crossing)
        except psycopg.Error as exc:
            errors.append(exc)

    with _connect(mariadb_url) as other, _connect(mariadb_url) as watcher:
        thread = threading.Thread(target=first, args=(other,))
        thread.start()
        try:
            assert first_locked.wait(PATIENCE), "the other session never locked its row"
            with mariadb_conn.transaction():
                mariadb_conn.execute("UPDATE t SET v = 2 WHERE k = 2")
                second_locked.set()
                # the other session asks for the row k = 2 that this one holds (or is about to)
                _until(lambda: _running(watcher, other.info.backend_pid, crossing))
                try:
                    mariadb_conn.execute("UPDATE t SET v = 2 WHERE k = 1")
                except pg.DeadlockDetected:
                    with pytest.raises(pg.InFailedSqlTransaction):
                        mariadb_conn.execute("UPDATE t SET v = 3 WHERE k = 1")
                    raise
        except psycopg.Error as exc:
            errors.append(exc)
        finally:
            # whatever happened, the other session ends (this block released its rows) before
            # its connection closes
            second_locked.set()
            thread.join(PATIENCE)
        assert not thread.is_alive(), "the other session never ended"
    assert [type(e) for e in errors] == [pg.DeadlockDetected]
    assert _values(mariadb_conn) in ([(1, 1), (2, 1)], [(1, 2), (2, 2)])


# -- errors ------------------------------------------------------------------------------------


SLEEP = "SET STATEMENT max_statement_time = 0.1 FOR SELECT SLEEP(5)"
SIGNAL = "SIGNAL SQLSTATE '{}' SET MESSAGE_TEXT = 'refused'"
TWO_ROWS = "SELECT 1 FROM t WHERE (SELECT k FROM t) = 1"


@pytest.mark.mariadb_only("max_statement_time (MySQL: max_execution_time)", params=["1969"])
@pytest.mark.parametrize(
    ("statement", "error", "errno", "sqlstate"),
    [
        ("INSERT INTO t VALUES (1, 0)", pg.UniqueViolation, 1062, "23505"),
        ("SELECT * FROM nowhere", pg.UndefinedTable, 1146, "42P01"),
        ("CREATE TABLE t (k INT)", pg.DuplicateTable, 1050, "42P07"),
        ("SELECT nothing FROM t", pg.UndefinedColumn, 1054, "42703"),
        ("SELEC 1", pg.SyntaxError, 1064, "42601"),
        ("INSERT INTO t VALUES (NULL, 0)", pg.NotNullViolation, 1048, "23502"),
        (SLEEP, pg.QueryCanceled, 1969, "57014"),
        (SIGNAL.format("45000"), pg.RaiseException, 1644, "P0001"),
        (SIGNAL.format("42501"), pg.InsufficientPrivilege, 1644, "42501"),
        (TWO_ROWS, pg.CardinalityViolation, 1242, "21000"),
    ],
)
def test_errors_come_in_the_standard_classes_with_the_server_message(
    mariadb_conn: Any, statement: str, error: type[psycopg.Error], errno: int, sqlstate: str
) -> None:
    _table(mariadb_conn)
    with pytest.raises(error) as caught:
        mariadb_conn.execute(statement)
    exc = caught.value
    assert (errno_of(exc), exc.sqlstate, exc.diag.sqlstate) == (errno, sqlstate, sqlstate)
    assert str(exc) == exc.diag.message_primary and server_sqlstate_of(exc)


def test_a_signal_text_is_never_taken_as_safe_to_show(mariadb_conn: Any) -> None:
    """A trigger writes what it likes: like PostgreSQL's RAISE, it carries a CONTEXT."""
    with pytest.raises(pg.InsufficientPrivilege) as caught:
        mariadb_conn.execute("SIGNAL SQLSTATE '42501' SET MESSAGE_TEXT = 'patient Dupont'")
    assert not server_text_is_safe(caught.value.sqlstate, caught.value.diag.context)


@pytest.mark.parametrize("sqlstate", ["42000", "42501", "55000", "57000", "3D000", "08000"])
def test_a_signal_with_its_own_errno_is_never_taken_as_safe_to_show(
    mariadb_conn: Any, sqlstate: str
) -> None:
    """A trigger may name any SQLSTATE and any MYSQL_ERRNO: a text whose errno is not one of
    the server's known naming errors is neither shown nor kept."""
    statement = (
        f"SIGNAL SQLSTATE '{sqlstate}' SET MYSQL_ERRNO = 30001, MESSAGE_TEXT = 'patient Dupont'"
    )
    with pytest.raises(psycopg.Error) as caught:
        mariadb_conn.execute(statement)
    exc = caught.value
    assert errno_of(exc) == 30001
    assert not server_text_is_safe(exc.sqlstate, exc.diag.context)
    assert "Dupont" not in describe_error(exc)


def test_a_signal_is_described_with_mariadbs_own_error_number_and_sqlstate(
    mariadb_conn: Any,
) -> None:
    """A compliance officer's finding: a trigger's SIGNAL SQLSTATE '45000' was described as
    'RaiseException (SQLSTATE P0001)', which a MariaDB DBA cannot look up."""
    with pytest.raises(pg.RaiseException) as caught:
        mariadb_conn.execute(SIGNAL.format("45000"))
    assert describe_error(caught.value) == (
        "RaiseException (SQLSTATE P0001; MariaDB error 1644, SQLSTATE 45000)"
    )


def test_the_daemon_never_logs_a_value_a_server_error_quotes(mariadb_conn: Any) -> None:
    """Error 1411 quotes the value and is the driver's OperationalError, which the daemon's
    retry loop catches and logs."""
    from retention.daemon.loop import _short

    mariadb_conn.execute("CREATE TABLE dt (d DATE)")
    with pytest.raises(psycopg.OperationalError) as caught:
        mariadb_conn.execute("INSERT INTO dt (d) SELECT STR_TO_DATE(%s, '%%Y-%%m-%%d')", ["Dupont"])
    assert "Dupont" in str(caught.value)  # the server's text does quote it
    assert "Dupont" not in _short(caught.value)


def test_the_servers_own_naming_errors_are_still_shown(mariadb_conn: Any) -> None:
    with pytest.raises(pg.UndefinedTable) as caught:
        mariadb_conn.execute("SELECT * FROM nowhere")
    assert server_text_is_safe(caught.value.sqlstate, caught.value.diag.context)
    assert "nowhere" in describe_error(caught.value)


@pytest.mark.mariadb_only(
    "a password login over TCP without TLS (MySQL: caching_sha2_password needs TLS)"
)
def test_a_missing_privilege_is_insufficient_privilege(mariadb_conn: Any) -> None:
    _table(mariadb_conn)
    with (
        _limited_user(mariadb_conn, "SELECT") as user,
        _connect(user.url) as reader,
        pytest.raises(pg.InsufficientPrivilege) as caught,
    ):
        reader.execute("DELETE FROM t")
    assert errno_of(caught.value) == 1142


def test_error_messages_hold_no_parameter_value(mariadb_conn: Any) -> None:
    """Values travel apart from the text: the server's messages cannot quote them."""
    secret = "Dupont-1957-secret"
    for statement in ("INSERT INTO nowhere VALUES (%s)", "SELECT %s FROM WHERE"):
        with pytest.raises(psycopg.ProgrammingError) as caught:
            mariadb_conn.execute(statement, [secret])
        assert secret not in str(caught.value) and secret not in repr(caught.value)


def test_a_zero_date_is_a_clear_error_and_cast_to_text_reads_it(mariadb_conn: Any) -> None:
    mariadb_conn.execute("CREATE TABLE z (id INT PRIMARY KEY, d DATE NOT NULL)")
    mariadb_conn.execute(
        "INSERT INTO z VALUES (1, '0000-00-00'), (2, '2020-00-10'), (3, '2020-05-00')"
    )
    for key in (1, 2, 3):
        for name in ("", "streaming"):
            with pytest.raises(pg.DatetimeFieldOverflow, match=r"CAST\(column AS CHAR\)"):
                mariadb_conn.cursor(name=name).execute(
                    "SELECT d FROM z WHERE id = %s", [key]
                ).fetchall()
    read = mariadb_conn.execute("SELECT CAST(d AS CHAR) FROM z ORDER BY id").fetchall()
    assert read == [("0000-00-00",), ("2020-00-10",), ("2020-05-00",)]


@pytest.mark.mariadb_only("a killed SLEEP() returns 1 on MySQL, without an error")
def test_cancel_safe_stops_the_running_statement(mariadb_conn: Any, mariadb_url: str) -> None:
    outcome: list[BaseException] = []
    sleep = "SELECT SLEEP(60)"

    def sleeps() -> None:
        try:
            mariadb_conn.execute(sleep).fetchall()
        except psycopg.Error as exc:
            outcome.append(exc)

    with _connect(mariadb_url) as watcher:
        thread = threading.Thread(target=sleeps)
        thread.start()
        try:
            _until(lambda: _running(watcher, mariadb_conn.info.backend_pid, sleep))
        finally:
            mariadb_conn.cancel_safe()
            thread.join(PATIENCE)
        assert not thread.is_alive(), "the cancelled statement never ended"
    assert [type(e) for e in outcome] == [pg.QueryCanceled]
    assert mariadb_conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.mariadb_only("a killed SLEEP() returns 1 on MySQL, without an error")
def test_closed_while_another_thread_runs_a_statement_the_handle_waits_for_it(
    mariadb_conn: Any, mariadb_url: str
) -> None:
    """MariaDB Connector/Python frees the handle under a call running in another thread (the
    process died, SIGSEGV): the connection is closed at once, its handle as the call ends."""
    outcome: list[BaseException] = []
    sleep, session = "SELECT SLEEP(60)", mariadb_conn.info.backend_pid

    def sleeps() -> None:
        try:
            mariadb_conn.execute(sleep).fetchall()
        except psycopg.Error as exc:
            outcome.append(exc)

    with _connect(mariadb_url) as watcher:
        thread = threading.Thread(target=sleeps)
        thread.start()
        try:
            _until(lambda: _running(watcher, session, sleep))
            mariadb_conn.close()
            assert mariadb_conn.closed
            assert mariadb_conn.info.transaction_status == TransactionStatus.UNKNOWN
            with pytest.raises(psycopg.OperationalError, match="closed"):
                mariadb_conn.execute("SELECT 1")
            assert _running(watcher, session, sleep)  # SLEEP(60) ends only when cancelled
        finally:
            mariadb_conn.cancel_safe()  # closed, it still stops the statement
            thread.join(PATIENCE)
        assert not thread.is_alive(), "the cancelled statement never ended"
        _until(lambda: not _connected(watcher, session))  # closed by its thread
    assert [type(e) for e in outcome] == [pg.QueryCanceled]


def _connected(watcher: MariaDBConnection, session_id: int) -> bool:
    table, session, _ = sessions()
    query = f"SELECT COUNT(*) FROM {table} WHERE {session} = %s"
    return bool(watcher.execute(query, [session_id]).fetchone()[0])


def test_errors_collected_in_reference_cycles_leave_the_connection_whole(
    mariadb_conn: Any,
) -> None:
    """MariaDB Connector/Python 1.1 gives back a reference to the connection it never took when
    the garbage collector frees one of its cursors, as happens to an error kept in a reference
    cycle (its traceback's frames hold the cursor): two of them freed the connection under the
    tool, and the next statement crashed the process (SIGSEGV)."""
    for _ in range(4):
        cycle: list[Any] = [_date_refused(mariadb_conn)]
        cycle.append(cycle)
        del cycle
        gc.collect()
    assert mariadb_conn.execute("SELECT 1").fetchone() == (1,)
    with mariadb_conn.transaction():
        assert mariadb_conn.execute("SELECT 2").fetchone() == (2,)


def _date_refused(conn: MariaDBConnection) -> BaseException:
    """Refused by the engine once the driver's cursor ran the statement (its frame holds it)."""
    with pytest.raises(psycopg.NotSupportedError) as caught:
        conn.execute("SELECT CURRENT_DATE", prepare=False)
    return caught.value


def test_a_killed_connection_is_lost_not_a_refused_statement(
    mariadb_conn: Any, mariadb_url: str
) -> None:
    with pytest.raises(pg.UndefinedTable) as refused:
        mariadb_conn.execute("SELECT * FROM nowhere")
    assert not db.connection_lost(mariadb_conn, refused.value)
    with _connect(mariadb_url) as admin:
        admin.execute(sql.SQL("KILL {}").format(sql.Literal(mariadb_conn.info.backend_pid)))
    with pytest.raises(psycopg.OperationalError) as lost:
        mariadb_conn.execute("SELECT 1")
    assert db.connection_lost(mariadb_conn, lost.value)
    assert mariadb_conn.broken and mariadb_conn.closed
    assert mariadb_conn.info.transaction_status == TransactionStatus.UNKNOWN


def test_a_closed_connection_and_cursor_refuse_statements(mariadb_url: str) -> None:
    with _connect(mariadb_url) as conn:
        cur = conn.cursor()
    assert conn.closed and not conn.broken
    with pytest.raises(psycopg.OperationalError, match="closed"):
        conn.execute("SELECT 1")
    cur.close()
    with pytest.raises(psycopg.InterfaceError, match="closed"):
        cur.execute("SELECT 1")


# -- connecting ----------------------------------------------------------------------------------


@pytest.mark.mariadb_only(
    "a password login over TCP without TLS (MySQL: caching_sha2_password needs TLS)"
)
def test_no_password_in_the_dsn_or_in_any_error_message(mariadb_conn: Any) -> None:
    with _limited_user(mariadb_conn, "SELECT") as user:
        with _connect(user.url) as conn:
            assert user.password not in conn.info.dsn + repr(conn.target)
            with pytest.raises(psycopg.Error) as caught:
                conn.execute("DROP TABLE nowhere")
            assert user.password not in str(caught.value)
        with pytest.raises(DatabaseError) as refused:
            db.connect(SETTINGS, url=user.url.replace(user.password, "not-" + user.password))
        assert user.password not in refused.value.render()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mariadb://u:Hunter2pw@host:port/db", "host or port"),
        ("mariadb://u:Hun#ter2pw@host/db", "host or port"),
        ("mariadb://u:pw@host/db#Hunter2pw", "#fragment"),
        ("mariadb://u:Hunter2pw@host/db?Hunter2pw=1", "unknown option"),
        ("mariadb://u:Hunter2pw@host/db?ssl=Hunter2pw", "true or false"),
        ("mariadb://u:Hunter2pw@host/db/table", "more than a database"),
        ("mariadb://u:Hunter2pw@host/db?ssl=1&ssl=0", "twice"),
    ],
)
def test_a_malformed_url_is_a_clear_error_that_never_quotes_it(url: str, reason: str) -> None:
    with pytest.raises(DatabaseError, match=reason) as caught:
        db.connect(SETTINGS, url=url)
    assert "Hunter2pw" not in caught.value.render() and "ter2pw" not in caught.value.render()


def test_a_server_that_refuses_is_a_clear_error(mariadb_admin_url: str) -> None:
    with pytest.raises(DatabaseError, match="cannot connect"):
        db.connect(SETTINGS, url="mariadb://root@127.0.0.1:1/db")
    with pytest.raises(DatabaseError, match="Unknown database"):
        db.connect(SETTINGS, url=with_database(mariadb_admin_url, "rt_no_such_database_x"))


def test_a_missing_driver_is_a_clear_error_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "mariadb", None)  # what `import mariadb` meets without it
    with pytest.raises(DatabaseError, match="driver") as caught:
        db.connect(SETTINGS, url="mariadb://root@127.0.0.1:3306/db")
    assert "libmariadb-dev" in (caught.value.hint or "")


class _limited_user:  # noqa: N801 (a context manager used like a function)
    """A user with only `privileges` on the test database and a password; dropped at exit."""

    def __init__(self, conn: MariaDBConnection, privileges: str) -> None:
        self.conn, self.privileges = conn, privileges
        self.name = f"rt_user_{os.getpid()}_{next(_users)}"
        self.password = f"pw-{os.getpid()}-{self.name}-Zq9"
        self.url = f"mariadb://{self.name}:{self.password}@127.0.0.1:3306/{conn.info.dbname}"

    def __enter__(self) -> _limited_user:
        self.conn.execute(  # the server takes no parameter there: the driver escapes it
            sql.SQL("CREATE USER {} IDENTIFIED BY %s").format(self._account()),
            [self.password],
            prepare=False,
        )
        self.conn.execute(
            sql.SQL("GRANT " + self.privileges + " ON {}.* TO {}").format(
                sql.Identifier(self.conn.info.dbname), self._account()
            )
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.execute(sql.SQL("DROP USER IF EXISTS {}").format(self._account()))

    def _account(self) -> sql.Composed:
        return sql.SQL("{}@{}").format(sql.Identifier(self.name), sql.Identifier("127.0.0.1"))


def test_a_foreign_key_violation_says_what_it_means(mariadb_conn: Any) -> None:
    """A delete a foreign key refuses (a table the policy does not follow still refers to the
    row): the tool's words and what to do, the server's text (which MariaDB gives in full)
    not kept."""
    mariadb_conn.execute("CREATE TABLE fk_p (id INT PRIMARY KEY) ENGINE=InnoDB")
    mariadb_conn.execute(
        "CREATE TABLE fk_c (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES fk_p (id)) "
        "ENGINE=InnoDB"
    )
    mariadb_conn.execute("INSERT INTO fk_p VALUES (1)")
    mariadb_conn.execute("INSERT INTO fk_c VALUES (1, 1)")
    with pytest.raises(pg.ForeignKeyViolation) as caught:
        mariadb_conn.execute("DELETE FROM fk_p")
    said = describe_error(caught.value)
    assert said.startswith("a foreign key refused the change: rows of another table still")
    assert "declare it under related.links" in said and "23503" in said


@pytest.mark.parametrize("option", ["ssl=true", "ssl_verify_cert=true"])
@pytest.mark.mariadb_only("a server without TLS (MySQL makes its own certificate)")
def test_a_url_asking_for_tls_gets_an_encrypted_connection_or_none(
    mariadb_url: str, option: str
) -> None:
    """An outside review: on a server without TLS (`have_ssl` DISABLED, as here) `?ssl=true`
    connected in plain text without a word. Now the connection is refused; on a server with
    TLS it is encrypted. Either way this asserts what the server says of the session."""
    with db.connect(Settings(), url=mariadb_url) as plain:
        have_ssl = plain.execute("SHOW VARIABLES LIKE 'have_ssl'").fetchone()
    url = f"{mariadb_url}{'&' if '?' in mariadb_url else '?'}{option}"
    if have_ssl is None or have_ssl[1] != "YES":
        # ssl_verify_cert: the driver refuses by itself; ssl: this tool does
        refused = "asks for TLS, but the server did not encrypt|SSL is required"
        with pytest.raises(DatabaseError, match=refused):
            db.connect(Settings(), url=url)
        return
    with db.connect(Settings(), url=url) as encrypted:
        cipher = encrypted.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'").fetchone()
        assert cipher is not None and cipher[1]
