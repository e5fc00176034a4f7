"""Many rows into a table at once: MariaDB's bulk protocol (`executemany`), in chunks.

MariaDB has no COPY (docs/ENGINES.md, 2.5). `executemany` of one prepared INSERT sends a chunk
of rows in one bulk request (COM_STMT_BULK_EXECUTE): the values travel apart from the SQL
text, as with every statement of this engine. A cursor's `executemany` renders and checks each
row's parameters through the general path (names, mappings, `Literal`s); here the statement is
rendered once, and each value is only checked to be of a type the driver sends as it is
(anything else is refused, as the renderer refuses it: the driver would send its `str()`).
`LOAD DATA LOCAL INFILE` is not used: the session disables it.

`copy_between` (a slice's temporary table, computed by a helper connection, appended to the run's)
streams the source's rows and loads them in the same chunks: no more than a chunk in memory.

The signatures are the engine seam's `Bulk` (docs/ENGINES.md, 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import suppress
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from typing import Any

import psycopg

from retention.engines import Connection, sql
from retention.engines.mariadb.render import render

CHUNK_ROWS = 5_000  # rows per bulk request: well under the default max_allowed_packet (16 MB)

# the types the driver sends as they are (render._PARAMETER_TYPES, by exact type for speed)
_AS_IS = frozenset({str, int, float, Decimal, bytes, bytearray, date, datetime, time, timedelta})


def load(
    conn: Connection,
    table: sql.Composable,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> int:
    """Insert `rows` (values in the order of `columns`) into `table`, `chunk_rows` rows per bulk
    request, in the caller's transaction if any; how many rows."""
    from retention.engines.mariadb.connection import MariaDBConnection

    if not isinstance(conn, MariaDBConnection):
        raise TypeError(f"not a MariaDB connection: {type(conn).__name__}")
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        table,
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
    )
    text = render(query, [None] * len(columns)).text
    width = len(columns)
    loaded = 0
    iterator = iter(rows)
    raw = conn._driver_cursor(streaming=False, prepared=True)  # prepared once, for every chunk
    try:
        while chunk := [_values(row, width) for row in islice(iterator, chunk_rows)]:
            with conn._statement(text):
                raw.executemany(text, chunk)
            loaded += len(chunk)
    finally:
        with suppress(Exception):  # the connection is gone already: nothing to free
            conn._close_cursor(raw)  # under the connection's lock (connection.py, Threads)
    return loaded


def _values(row: Sequence[Any], width: int) -> tuple[Any, ...]:
    if len(row) != width:
        raise psycopg.ProgrammingError(
            f"the query has {width} placeholders but {len(row)} parameters were passed"
        )
    for value in row:
        if value is not None and type(value) not in _AS_IS:
            return tuple(_converted(v) for v in row)
    return tuple(row)


def _converted(value: Any) -> Any:
    """A value of another type: booleans as 1/0, subclasses of the types above as they are;
    anything else refused."""
    if value is None or type(value) in _AS_IS:
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, tuple(_AS_IS)):
        return value
    raise psycopg.ProgrammingError(
        f"cannot adapt type {type(value).__name__!r} to a MariaDB parameter"
    )


def copy_between(
    source: Connection, target: Connection, table: sql.Composable, *, chunk_rows: int = CHUNK_ROWS
) -> None:
    """Append the rows of `table` on `source` (a temporary table of its session) to the table
    of the same name on `target`, streamed: a chunk of rows in memory at a time."""
    cursor = source.cursor("copy_between")  # named: streams its rows
    try:
        cursor.execute(sql.SQL("SELECT * FROM {}").format(table))
        columns = [column.name for column in cursor.description or ()]
        load(target, table, columns, cursor, chunk_rows=chunk_rows)
    finally:
        cursor.close()


class Bulk:
    """The engine's `Bulk` (engines/bulk.py)."""

    def load(
        self,
        conn: Connection,
        table: sql.Composable,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
    ) -> int:
        return load(conn, table, columns, rows)

    def copy_between(self, source: Connection, target: Connection, table: sql.Composable) -> None:
        copy_between(source, target, table)
