"""Sample column values at a cost that does not grow with the table.

One query per table reads a fixed number of rows: ``TABLESAMPLE SYSTEM`` with a percentage
computed from the planner's estimate (``reltuples``, ``relpages``) so that about the same number
of pages is read whatever the table size; tables too small for that are read with a plain
``LIMIT``. Values are cast to text and truncated server-side; each column keeps its first
distinct non-null values. Each table is read in its own short read-only transaction with a
lock and statement timeout, so a locked or huge table never stalls the scan.

Sampled values live in memory only, for analysis; they are never written or logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from retention.catalog.introspect import Column, Table
from retention.engines import Connection, errors, sql

MAX_TEXT = 500
"""Characters kept of a text value (names and identifiers are far shorter)."""
MAX_JSON = 4000
"""Characters kept of a JSON value (a change-log entry)."""
MAX_ROWS = 20_000
"""Rows read per table at most."""

_STATS = """
SELECT c.relpages, c.reltuples,
       coalesce((SELECT json_object_agg(s.attname, s.null_frac) FROM pg_stats s
                 WHERE s.schemaname = n.nspname AND s.tablename = c.relname), '{}') AS null_frac
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""


@dataclass(frozen=True)
class ColumnSample:
    """Distinct non-null values of one column (as text), from ``rows`` sampled rows;
    ``distinct``: how many distinct values those rows hold (``values`` keeps the first ones)."""

    values: tuple[str, ...]
    rows: int
    non_null: int
    distinct: int = 0

    @property
    def distinct_share(self) -> float:
        """Distinct values per non-null row read: 1.0 when no two rows share a value."""
        return max(self.distinct, len(self.values)) / self.non_null if self.non_null else 0.0

    @property
    def null_share(self) -> float:
        return 1 - self.non_null / self.rows if self.rows else 1.0


@dataclass(frozen=True)
class TableSample:
    """What was read from one table, or why nothing was (``error``)."""

    table: Table
    method: str  # "tablesample", "tablesample+scan" (topped up), "scan" or "none"
    rows: int
    columns: dict[str, ColumnSample]
    error: str | None = None


@dataclass(frozen=True)
class _Stats:
    pages: int
    tuples: float
    null_frac: dict[str, float]


def sample_table(
    conn: Connection,
    table: Table,
    columns: Iterable[Column],
    *,
    values: int = 300,
    timeout_ms: int = 30_000,
    lock_timeout_ms: int = 2_000,
) -> TableSample:
    """Up to ``values`` distinct non-null values of each of ``columns``."""
    wanted = list(columns)
    if not wanted:
        return TableSample(table, "none", 0, {})
    try:
        with conn.transaction():
            _limits(conn, timeout_ms, lock_timeout_ms)
            stats = _stats(conn, table)
            rows = _target_rows(stats, wanted, values)
            method, query = _query(table, wanted, stats, rows)
            fetched = conn.execute(query).fetchall()
            if method == "tablesample" and len(fetched) < rows // 2:
                # SYSTEM sampling picks whole pages at random: a small sample of a large table
                # can come back nearly empty (about 4 pages expected out of 1,900 at 300,000
                # short rows: none at all about 1.5 % of the time; seen in a test run). Top it
                # up from the start of the table rather than report no values.
                method = "tablesample+scan"
                fetched += conn.execute(_scan(table, wanted, rows - len(fetched))).fetchall()
    except (errors.LockNotAvailable, errors.QueryCanceled):
        return TableSample(table, "none", 0, {}, "timed out (locked or too slow)")
    except errors.InsufficientPrivilege:
        return TableSample(table, "none", 0, {}, "no SELECT privilege")
    return TableSample(table, method, len(fetched), _distinct(wanted, fetched, values))


def _limits(conn: Connection, timeout_ms: int, lock_timeout_ms: int) -> None:
    conn.execute("SET TRANSACTION READ ONLY")
    conn.execute(
        "SELECT set_config('statement_timeout', %s, true), "
        "set_config('lock_timeout', %s, true), set_config('DateStyle', 'ISO', true)",
        (str(timeout_ms), str(lock_timeout_ms)),
    )


def _stats(conn: Connection, table: Table) -> _Stats:
    row = conn.execute(_STATS, (table.schema, table.name)).fetchone()
    if row is None:
        return _Stats(0, -1, {})
    return _Stats(int(row[0]), float(row[1]), {k: float(v) for k, v in row[2].items()})


def _target_rows(stats: _Stats, columns: list[Column], values: int) -> int:
    """Rows needed for ``values`` non-null values of the sparsest column (within reason)."""
    fill = min(max(1 - stats.null_frac.get(c.name, 0.0), 0.05) for c in columns)
    return min(MAX_ROWS, max(values * 2, int(values / fill)))


def _query(
    table: Table, columns: list[Column], stats: _Stats, rows: int
) -> tuple[str, sql.Composed]:
    select = sql.SQL(", ").join(_expression(c) for c in columns)
    source = sql.Identifier(table.schema, table.name)
    if stats.tuples > 4 * rows and stats.pages > 0:
        per_page = max(stats.tuples / stats.pages, 1.0)
        percent = min(100.0, 100.0 * 2 * rows / per_page / stats.pages)
        query = sql.SQL("SELECT {} FROM {} TABLESAMPLE SYSTEM ({}) LIMIT {}").format(
            select, source, sql.Literal(round(percent, 6)), sql.Literal(rows)
        )
        return "tablesample", query
    return "scan", _scan(table, columns, rows)


def _scan(table: Table, columns: list[Column], rows: int) -> sql.Composed:
    select = sql.SQL(", ").join(_expression(c) for c in columns)
    return sql.SQL("SELECT {} FROM {} LIMIT {}").format(
        select, sql.Identifier(table.schema, table.name), sql.Literal(rows)
    )


def _expression(column: Column) -> sql.Composed:
    limit = MAX_JSON if column.is_json else MAX_TEXT
    return sql.SQL("left({}::text, {})").format(sql.Identifier(column.name), sql.Literal(limit))


def _distinct(
    columns: list[Column], rows: list[tuple[Any, ...]], values: int
) -> dict[str, ColumnSample]:
    out = {}
    for i, column in enumerate(columns):
        seen: dict[str, None] = {}
        every: set[int] = set()
        non_null = 0
        for row in rows:
            value = row[i]
            if value is None:
                continue
            non_null += 1
            every.add(hash(value.strip()))
            if len(seen) < values:
                seen.setdefault(value.strip(), None)
        seen.pop("", None)
        out[column.name] = ColumnSample(tuple(seen), len(rows), non_null, len(every))
    return out
