"""MariaDB's bulk load (`engines/mariadb/bulk.py`): rows in chunks, values as parameters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal

import psycopg
import pytest

from retention.engines import Connection, sql

TABLE = sql.Identifier("t")
COLUMNS = ("k", "s", "n", "d", "dt", "tm", "dec", "b")


@pytest.fixture
def table(mariadb_conn: Connection) -> Connection:
    mariadb_conn.execute(
        "CREATE TABLE t (k int unsigned PRIMARY KEY, s varchar(40), n bigint, d date,"
        " dt datetime, tm time, `dec` decimal(10,2), b tinyint(1)) ENGINE=InnoDB"
    )
    return mariadb_conn


def _load(conn: Connection, rows: Sequence[tuple[object, ...]], chunk_rows: int = 3) -> int:
    from retention.engines.mariadb.bulk import load

    return load(conn, TABLE, COLUMNS, rows, chunk_rows=chunk_rows)


def test_rows_of_every_type_are_loaded_in_chunks(table: Connection) -> None:
    rows = [
        (i, f"é'\"`?%s{i}", -(2**40) + i, date(2020, 2, 29), datetime(2021, 3, 4, 5, 6, 7),
         time(8, 15), Decimal("12.34"), i % 2 == 0)
        for i in range(1, 11)
    ] + [(11, None, None, None, None, None, None, None)]  # fmt: skip
    assert _load(table, rows) == 11
    read = table.execute(
        "SELECT k, s, n, d, dt, CAST(tm AS CHAR), `dec`, b FROM t ORDER BY k"
    ).fetchall()
    assert [tuple(r) for r in read[:10]] == [
        (r[0], r[1], r[2], r[3], r[4], "08:15:00", r[6], int(bool(r[7]))) for r in rows[:10]
    ]
    assert tuple(read[10]) == (11,) + (None,) * 7


def test_an_empty_load_sends_nothing(table: Connection) -> None:
    assert _load(table, []) == 0


def test_a_value_the_driver_cannot_send_as_it_is_is_refused(table: Connection) -> None:
    with pytest.raises(psycopg.ProgrammingError, match="cannot adapt type 'dict'"):
        _load(table, [(1, {"a": 1}, None, None, None, None, None, None)])
    assert table.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0


def test_a_row_of_the_wrong_width_is_refused(table: Connection) -> None:
    with pytest.raises(psycopg.ProgrammingError, match="8 placeholders but 2 parameters"):
        _load(table, [(1, "a")])


def test_a_failed_chunk_rolls_back_with_the_callers_transaction(table: Connection) -> None:
    rows = [(i, "a", None, None, None, None, None, None) for i in (1, 2, 3, 4, 4)]
    with pytest.raises(psycopg.errors.UniqueViolation), table.transaction():
        _load(table, rows, chunk_rows=2)
    assert table.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0
    assert _load(table, rows[:4]) == 4  # the connection is usable again


def test_a_postgresql_connection_is_refused(conn: psycopg.Connection[object]) -> None:
    with pytest.raises(TypeError, match="not a MariaDB connection"):
        _load(conn, [])
