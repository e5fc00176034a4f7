"""Reading a bounded sample of a table's rows, whatever its size (`retention scan`).

Each engine reads about `rows` rows of a table at a cost that does not grow with it, every
value as text cut server-side to its column's limit, under the given statement and lock
timeouts, and never holds a lock once it returns. Values read are for analysis in memory only.

- PostgreSQL (`postgresql/sample.py`): `TABLESAMPLE SYSTEM` with a percentage computed from the
  planner's statistics, topped up from the table's start when the pages drawn were too few; a
  plain `LIMIT` for small tables.
- MariaDB (`mariadb/sample.py`): no `TABLESAMPLE` (docs/ENGINES.md 2.3): short ranges of a
  numeric unique key from random starting keys between its MIN and MAX (read from the index),
  the whole table (up to the limit) when small; dates are read as text and zero dates are
  unreadable (None), never read raw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from retention.engines import sql
from retention.engines.catalogue import Column, Table
from retention.engines.connection import Connection


@dataclass(frozen=True)
class SampleRequest:
    """What to read: `columns` with the characters kept of each (`limits`, same order),
    enough rows for `values` non-null values of the sparsest column, at most `max_rows`."""

    columns: Sequence[Column]
    limits: Sequence[int]
    values: int
    max_rows: int
    timeout_ms: int
    lock_timeout_ms: int


@dataclass(frozen=True)
class SampledRows:
    """The rows read (one text or None per requested column, in order) and how:
    "tablesample", "tablesample+scan" (topped up), "key ranges" or "scan" (the table's first
    rows, all of it when small)."""

    method: str
    rows: list[tuple[str | None, ...]]


@dataclass(frozen=True)
class SpreadRows:
    """About a bounded number of a table's rows spread over it, as a FROM item (`source`)
    exposing at least the columns asked for by their names; the same rows for the same data.
    `method` says how, in words for a person ('a sample of random blocks (...)')."""

    source: sql.Composable
    method: str


class Sampler(Protocol):
    def sample(self, conn: Connection, table: Table, request: SampleRequest) -> SampledRows:
        """About enough rows of `table` for `request` (module docstring). Raises the
        engine-neutral `errors.LockNotAvailable` / `QueryCanceled` when a limit is reached and
        `errors.InsufficientPrivilege` without SELECT."""
        ...

    def spread_rows(
        self, conn: Connection, table: Table, columns: Sequence[str], limit: int
    ) -> SpreadRows | None:
        """About twice `limit` rows of `table` spread over it, for a query that reads at most
        `limit` of them (`retention draft` and `check` measure references and dates so), or
        None when the table is estimated at `limit` rows or fewer: read it whole. PostgreSQL
        `TABLESAMPLE SYSTEM ... REPEATABLE (0)`; MariaDB ranges of a numeric unique key from
        reproducible random starts (the table's first rows without such a key)."""
        ...

    def spread_order(self, expr: sql.Composable) -> sql.Composable:
        """An ORDER BY expression that scatters `expr`'s values reproducibly, so that the first
        values of a sample are not those of its first blocks or ranges (PostgreSQL
        `hashtext(expr::text)`, MariaDB `CRC32(expr)`)."""
        ...
