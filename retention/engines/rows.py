"""Rows as callers read them: tuples by default, dicts by column name with `dict_row`, and
long results streamed.

`dict_row` is psycopg's row factory (`conn.cursor(row_factory=dict_row)`), the neutral name as
`retention.engines.sql` is psycopg's composition: another engine's cursor honours it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from psycopg.rows import dict_row

from retention.engines import sql
from retention.engines.connection import Connection

__all__ = ["Rows", "dict_row"]


class Rows(Protocol):
    def stream(
        self,
        conn: Connection,
        query: sql.Composable,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
    ) -> AbstractContextManager[Iterator[dict[str, Any]]]:
        """The rows of `query` by column name, read a few at a time (memory stays flat),
        inside the caller's transaction; nothing else may run on `conn` until the block ends
        (PostgreSQL: a server-side cursor; MariaDB: an unbuffered one)."""
        ...
