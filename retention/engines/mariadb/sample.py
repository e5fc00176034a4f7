"""MariaDB's bounded sample of a table (`engines/sample.py`). There is no `TABLESAMPLE`
(docs/ENGINES.md 2.3): rows are read in short ranges of a numeric unique key.

- **Key ranges**: the key's MIN and MAX come from its index (two index dives); each range is
  `WHERE k >= <random key> ORDER BY k LIMIT 50`, an index lookup and 50 rows in key order, so
  the cost is the number of ranges, not the size of the table. Up to 40 ranges go in one
  statement (`UNION ALL`); rows two ranges share are kept once (by the key). The starting keys
  are drawn from a generator seeded by the table's name: a scan of unchanged data reads the
  same rows, so its verdicts do not flicker from one scan to the next.
- **How many rows**: MariaDB keeps no share of nulls per column (`mysql.column_stats` only
  after `ANALYZE ... PERSISTENT`), so twice `values` rows are read first, and more (up to the
  limit) when the sparsest column's non-null share in them says so, as PostgreSQL's `null_frac`
  does before reading.
- **The table's first rows** (a plain `LIMIT`) when it is small (its estimated rows at most four
  times the rows wanted: all of it, as PostgreSQL's sample), when it has no numeric unique key,
  or to top up ranges that came back short (a key with large gaps).
- **Limits**: every statement runs under `SET STATEMENT max_statement_time=...,
  lock_wait_timeout=... FOR` (statement-scoped: nothing to put back); a consistent read takes
  no row lock, only the table's metadata lock, which `lock_wait_timeout` bounds (whole
  seconds, rounded up). MySQL 8 has no `SET STATEMENT`: there each statement is one SELECT
  carrying the hints `/*+ MAX_EXECUTION_TIME(ms) SET_VAR(lock_wait_timeout=s) */` after its
  first SELECT (MySQL 8.0.3+; the ranges' union read through a derived table, so that the
  hints stand after the statement's first SELECT, as the manual requires).
- **Dates** are read as `CAST(d AS CHAR)`, never raw (the driver raises on a zero date): a zero
  date, or one with a zero month or day, is an unreadable value (None), as the clock treats it.
  Every other value is `CAST(... AS CHAR)` cut by `LEFT` to its limit.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from collections.abc import Sequence

from psycopg import sql

from retention.engines import Connection
from retention.engines.catalogue import Column, Table
from retention.engines.mariadb import flavour
from retention.engines.sample import SampledRows, SampleRequest, SpreadRows

RANGE_ROWS = 50
"""Rows read from each random starting key."""
RANGES_PER_STATEMENT = 40
SPREAD_RANGES = 100
"""At most this many ranges in a spread sample (`spread_rows`): longer ranges beyond."""
_INTEGERS = frozenset({"tinyint", "smallint", "mediumint", "int", "bigint"})
_ZERO_DATE = re.compile(r"^(?:0000-|\d{4}-00-|\d{4}-\d\d-00)")

Row = tuple[str | None, ...]


class Sampler:
    def sample(self, conn: Connection, table: Table, request: SampleRequest) -> SampledRows:
        reader = _Reader(conn, table, request)
        with conn.transaction():
            return reader.read()

    def spread_rows(
        self, conn: Connection, table: Table, columns: Sequence[str], limit: int
    ) -> SpreadRows | None:
        if table.estimated_rows <= limit:
            return None
        key = _range_key(table)
        names = list(dict.fromkeys([*key[:1], *columns]))
        select = sql.SQL(", ").join(map(sql.Identifier, names))
        source = sql.Identifier(table.schema, table.name)
        wanted = 2 * limit
        if table.estimated_rows <= 2 * wanted:
            # ranges would overlap, reading fewer rows than the table has: read it all (at most
            # four times `limit` rows), as PostgreSQL's sample of 50 to 100 % of its blocks
            return SpreadRows(source, f"every row (about {table.estimated_rows:,})")
        if not key:
            first = sql.SQL("(SELECT {} FROM {} LIMIT {}) AS s").format(
                select, source, sql.Literal(wanted)
            )
            return SpreadRows(first, f"the first {wanted:,} rows (no numeric unique key)")
        first_key = sql.Identifier(key[0])
        row = conn.execute(
            sql.SQL("SELECT MIN({k}), MAX({k}) FROM {t}").format(k=first_key, t=source)
        ).fetchone()
        if row is None or row[0] is None:
            return None  # empty since it was estimated
        bounds = int(row[0]), int(row[1])
        per = max(RANGE_ROWS, math.ceil(wanted / SPREAD_RANGES))
        rng = random.Random(zlib.crc32(f"{table.schema}.{table.name}".encode()))  # noqa: S311
        starts = [rng.randint(*bounds) for _ in range(math.ceil(wanted / per))]
        # UNION, not UNION ALL: a row two ranges share (the key is selected) counts once
        ranges = sql.SQL(" UNION ").join(
            sql.SQL("(SELECT {} FROM {} WHERE {} >= {} ORDER BY {} LIMIT {})").format(
                select, source, first_key, sql.Literal(start), first_key, sql.Literal(per)
            )
            for start in starts
        )
        method = f"{len(starts)} ranges of {per:,} keys from random starts"
        return SpreadRows(sql.SQL("({}) AS s").format(ranges), method)

    def spread_order(self, expr: sql.Composable) -> sql.Composable:
        return sql.SQL("CRC32({})").format(expr)


class _Reader:
    def __init__(self, conn: Connection, table: Table, request: SampleRequest) -> None:
        self.conn = conn
        self.table = table
        self.request = request
        self.key = _range_key(table)
        lock_seconds = sql.Literal(max(math.ceil(request.lock_timeout_ms / 1000), 1))
        self.mysql = flavour.of(conn).server == "mysql"
        self.prefix: sql.Composable = sql.SQL("")
        self.hints: sql.Composable = sql.SQL("")
        if self.mysql:  # no SET STATEMENT: the same limits as the statement's hints
            self.hints = sql.SQL("/*+ MAX_EXECUTION_TIME({}) SET_VAR(lock_wait_timeout={}) */ ")
            self.hints = self.hints.format(sql.Literal(max(request.timeout_ms, 0)), lock_seconds)
        else:
            self.prefix = sql.SQL(
                "SET STATEMENT max_statement_time={}, lock_wait_timeout={} FOR "
            ).format(sql.Literal(max(request.timeout_ms, 0) / 1000), lock_seconds)
        keys = [sql.Identifier(name) for name in self.key]
        pairs = zip(request.columns, request.limits, strict=True)
        values = [_expression(column, limit) for column, limit in pairs]
        self.select = sql.SQL(", ").join([*keys, *values])
        self.dates = [i for i, c in enumerate(request.columns) if c.is_date]
        # not a secret: where to read, reproducibly
        self.rng = random.Random(zlib.crc32(f"{table.schema}.{table.name}".encode()))  # noqa: S311

    def read(self) -> SampledRows:
        first = min(self.request.max_rows, self.request.values * 2)
        bounds = self._bounds() if self.key else None
        if bounds is None or self.table.estimated_rows <= 4 * first:
            rows = self._scan(first)
            wanted = self._wanted(rows)
            if wanted > len(rows) == first:
                rows = self._scan(wanted)
            return SampledRows("scan", rows)
        got: dict[tuple[str | None, ...], Row] = {}
        self._ranges(bounds, first, got)
        wanted = self._wanted(list(got.values()))
        if wanted > len(got):
            if self.table.estimated_rows <= 4 * wanted:
                return SampledRows("scan", self._scan(wanted))
            self._ranges(bounds, wanted - len(got), got)
        rows = list(got.values())
        if len(rows) < min(wanted, first) // 2:  # a key with large gaps: ranges come back short
            return SampledRows("scan", self._scan(wanted))
        return SampledRows("key ranges", rows[: self.request.max_rows])

    def _wanted(self, rows: Sequence[Row]) -> int:
        """Rows needed for `values` non-null values of the sparsest column, judged from
        `rows` (PostgreSQL's sampler judges from `null_frac`)."""
        values = self.request.values
        if not rows:
            return min(self.request.max_rows, values * 2)
        fill = min(
            max(sum(1 for row in rows if row[i] is not None) / len(rows), 0.05)
            for i in range(len(self.request.columns))
        )
        return min(self.request.max_rows, max(values * 2, int(values / fill)))

    def _bounds(self) -> tuple[int, int] | None:
        column = sql.Identifier(self.key[0])
        query = sql.SQL("{}SELECT {}MIN({}), MAX({}) FROM {}").format(
            self.prefix,
            self.hints,
            column,
            column,
            sql.Identifier(self.table.schema, self.table.name),
        )
        row = self.conn.execute(query).fetchone()
        if row is None or row[0] is None or row[1] is None:
            return None
        return int(row[0]), int(row[1])

    def _ranges(
        self, bounds: tuple[int, int], rows: int, got: dict[tuple[str | None, ...], Row]
    ) -> None:
        starts = [self.rng.randint(*bounds) for _ in range(math.ceil(rows / RANGE_ROWS))]
        source = sql.Identifier(self.table.schema, self.table.name)
        first = sql.Identifier(self.key[0])
        part = sql.SQL("(SELECT {} FROM {} WHERE {} >= %s ORDER BY {} LIMIT {})").format(
            self.select, source, first, first, sql.Literal(RANGE_ROWS)
        )
        for at in range(0, len(starts), RANGES_PER_STATEMENT):
            chunk = starts[at : at + RANGES_PER_STATEMENT]
            union = sql.SQL(" UNION ALL ").join([part] * len(chunk))
            if self.mysql:
                query = sql.SQL("SELECT {}* FROM ({}) AS r").format(self.hints, union)
            else:
                query = self.prefix + union
            for row in self.conn.execute(query, chunk).fetchall():
                got.setdefault(tuple(row[: len(self.key)]), self._values(row))

    def _scan(self, rows: int) -> list[Row]:
        query = sql.SQL("{}SELECT {}{} FROM {} LIMIT {}").format(
            self.prefix,
            self.hints,
            self.select,
            sql.Identifier(self.table.schema, self.table.name),
            sql.Literal(rows),
        )
        return [self._values(row) for row in self.conn.execute(query).fetchall()]

    def _values(self, row: Sequence[object]) -> Row:
        values = [None if v is None else str(v) for v in row[len(self.key) :]]
        for i in self.dates:
            value = values[i]
            if value is not None and _ZERO_DATE.match(value):
                values[i] = None  # unreadable: no date at all
        return tuple(values)


def _range_key(table: Table) -> tuple[str, ...]:
    """A unique key whose first column is a NOT NULL integer (the primary key first), or ()."""
    for key in (table.primary_key, *table.unique_keys):
        first = table.columns.get(key[0]) if key else None
        if first is not None and first.base_type in _INTEGERS and first.not_null:
            return tuple(key)
    return ()


def _expression(column: Column, limit: int) -> sql.Composed:
    if column.is_text or column.is_json:
        return sql.SQL("LEFT({}, {})").format(sql.Identifier(column.name), sql.Literal(limit))
    return sql.SQL("LEFT(CAST({} AS CHAR), {})").format(
        sql.Identifier(column.name), sql.Literal(limit)
    )
