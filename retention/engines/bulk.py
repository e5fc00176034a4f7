"""Moving many rows at once: into a table, and from one connection's table to another's.

PostgreSQL uses COPY (`postgresql/bulk.py`); MariaDB/MySQL have none: `executemany` of an
INSERT (docs/ENGINES.md, 2.5).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from retention.engines import sql
from retention.engines.connection import Connection


class Bulk(Protocol):
    def load(
        self,
        conn: Connection,
        table: sql.Composable,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
    ) -> int:
        """Insert `rows` (values in the order of `columns`) into `table`; how many."""
        ...

    def copy_between(self, source: Connection, target: Connection, table: sql.Composable) -> None:
        """Append the rows of `table` on `source` (e.g. a temporary table of its session) to
        the table of the same name on `target`, without going through Python objects where
        the engine can."""
        ...
