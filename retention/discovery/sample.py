"""Sample column values at a cost that does not grow with the table.

The engine reads the rows (`engine_of(conn).sampler`, `retention/engines/sample.py`): on
PostgreSQL ``TABLESAMPLE SYSTEM`` sized from the planner's statistics, on MariaDB short ranges
of a numeric key from random starting keys; small tables are read with a plain ``LIMIT``.
Values are cast to text and truncated server-side; each column keeps its first distinct
non-null values. Each table is read in its own short read-only transaction with a lock and
statement timeout, so a locked or huge table never stalls the scan.

Sampled values live in memory only, for analysis; they are never written or logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from retention.catalog.introspect import Column, Table
from retention.engines import Connection, engine_of, errors
from retention.engines.sample import SampleRequest

MAX_TEXT = 500
"""Characters kept of a text value (names and identifiers are far shorter)."""
MAX_JSON = 4000
"""Characters kept of a JSON value (a change-log entry)."""
MAX_ROWS = 20_000
"""Rows read per table at most."""


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
    method: str  # "tablesample", "tablesample+scan" (topped up), "key ranges", "scan", "none"
    rows: int
    columns: dict[str, ColumnSample]
    error: str | None = None


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
    request = SampleRequest(
        columns=wanted,
        limits=[MAX_JSON if c.is_json else MAX_TEXT for c in wanted],
        values=values,
        max_rows=MAX_ROWS,
        timeout_ms=timeout_ms,
        lock_timeout_ms=lock_timeout_ms,
    )
    try:
        got = engine_of(conn).sampler.sample(conn, table, request)
    except (errors.LockNotAvailable, errors.QueryCanceled):
        return TableSample(table, "none", 0, {}, "timed out (locked or too slow)")
    except errors.InsufficientPrivilege as exc:
        # row_security = off: a table whose policies would hide rows from this role is not
        # read at all (rather than read in part); the catalogue says where it applies (an
        # English server's message says so too; a missing privilege is the same SQLSTATE)
        text = str(exc)
        if "row-level security" in text or (table.row_security and "permission denied" not in text):
            why = "row-level security hides rows from this account (BYPASSRLS)"
            return TableSample(table, "none", 0, {}, why)
        return TableSample(table, "none", 0, {}, "no SELECT privilege")
    return TableSample(table, got.method, len(got.rows), _distinct(wanted, got.rows, values))


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
