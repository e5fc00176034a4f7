"""PostgreSQL's bounded sample of a table (`engines/sample.py`): the SQL `retention scan` has
always run, moved here unchanged.

One query per table reads a fixed number of rows: ``TABLESAMPLE SYSTEM`` with a percentage
computed from the planner's estimate (``reltuples``, ``relpages``) so that about the same number
of pages is read whatever the table size; tables too small for that are read with a plain
``LIMIT``. The rows wanted grow as the sparsest column's ``pg_stats.null_frac`` says. Values
are cast to text and truncated server-side. The table is read in a short read-only transaction
with a lock and statement timeout, so a locked or huge table never stalls the scan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from retention.engines import Connection
from retention.engines.catalogue import Column, Table
from retention.engines.sample import SampledRows, SampleRequest, SpreadRows

_STATS = """
SELECT c.relpages, c.reltuples,
       coalesce((SELECT json_object_agg(s.attname, s.null_frac) FROM pg_stats s
                 WHERE s.schemaname = n.nspname AND s.tablename = c.relname), '{}') AS null_frac
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""


@dataclass(frozen=True)
class _Stats:
    pages: int
    tuples: float
    null_frac: dict[str, float]


class Sampler:
    def sample(self, conn: Connection, table: Table, request: SampleRequest) -> SampledRows:
        wanted = list(zip(request.columns, request.limits, strict=True))
        with conn.transaction():
            _limits(conn, request.timeout_ms, request.lock_timeout_ms)
            stats = _stats(conn, table)
            rows = _target_rows(stats, request)
            method, query = _query(table, wanted, stats, rows)
            fetched = conn.execute(query).fetchall()
            if method == "tablesample" and len(fetched) < rows // 2:
                # SYSTEM sampling picks whole pages at random: a small sample of a large table
                # can come back nearly empty (about 4 pages expected out of 1,900 at 300,000
                # short rows: none at all about 1.5 % of the time; seen in a test run). Top it
                # up from the start of the table rather than report no values.
                method = "tablesample+scan"
                fetched += conn.execute(_scan(table, wanted, rows - len(fetched))).fetchall()
        return SampledRows(method, [tuple(row) for row in fetched])

    def spread_rows(
        self, conn: Connection, table: Table, columns: Sequence[str], limit: int
    ) -> SpreadRows | None:
        percent = sample_percent(table.estimated_rows, limit)
        if percent is None:
            return None
        source = sql.SQL("{} TABLESAMPLE SYSTEM ({}) REPEATABLE (0)").format(
            sql.Identifier(table.schema, table.name), sql.Literal(percent)
        )
        return SpreadRows(source, f"a sample of random blocks (TABLESAMPLE SYSTEM {percent:g}%)")

    def spread_order(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("hashtext({}::text)").format(expr)


def sample_percent(estimated_rows: int, limit: int) -> float | None:
    """The share of blocks to sample for about 2 x `limit` rows, or None to read the table."""
    if estimated_rows <= limit:
        return None
    return float(f"{min(100.0, 200.0 * limit / estimated_rows):.4g}")


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


def _target_rows(stats: _Stats, request: SampleRequest) -> int:
    """Rows needed for ``values`` non-null values of the sparsest column (within reason)."""
    fill = min(max(1 - stats.null_frac.get(c.name, 0.0), 0.05) for c in request.columns)
    values = request.values
    return min(request.max_rows, max(values * 2, int(values / fill)))


def _query(
    table: Table, columns: list[tuple[Column, int]], stats: _Stats, rows: int
) -> tuple[str, sql.Composed]:
    select = sql.SQL(", ").join(_expression(c, limit) for c, limit in columns)
    source = sql.Identifier(table.schema, table.name)
    if stats.tuples > 4 * rows and stats.pages > 0:
        per_page = max(stats.tuples / stats.pages, 1.0)
        percent = min(100.0, 100.0 * 2 * rows / per_page / stats.pages)
        query = sql.SQL("SELECT {} FROM {} TABLESAMPLE SYSTEM ({}) LIMIT {}").format(
            select, source, sql.Literal(round(percent, 6)), sql.Literal(rows)
        )
        return "tablesample", query
    return "scan", _scan(table, columns, rows)


def _scan(table: Table, columns: list[tuple[Column, int]], rows: int) -> sql.Composed:
    select = sql.SQL(", ").join(_expression(c, limit) for c, limit in columns)
    return sql.SQL("SELECT {} FROM {} LIMIT {}").format(
        select, sql.Identifier(table.schema, table.name), sql.Literal(rows)
    )


def _expression(column: Column, limit: int) -> sql.Composed:
    return sql.SQL("left({}::text, {})").format(sql.Identifier(column.name), sql.Literal(limit))
