"""Rows as callers read them: tuples by default, dicts by column name with `dict_row`, and
long results streamed.

`dict_row` is psycopg's row factory (`conn.cursor(row_factory=dict_row)`), the neutral name as
`retention.engines.sql` is psycopg's composition: another engine's cursor honours it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from psycopg.rows import dict_row

from retention.engines import sql
from retention.engines.connection import Connection

__all__ = ["NamedCursorRows", "Rows", "dict_row"]

_names = itertools.count(1)


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


class NamedCursorRows:
    """`Rows.stream` through a named cursor, which both engines' connections take: PostgreSQL's
    is server-side, MariaDB's unbuffered (engines/mariadb/cursor.py)."""

    @contextmanager
    def stream(
        self,
        conn: Connection,
        query: sql.Composable,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
    ) -> Iterator[Iterator[dict[str, Any]]]:
        with conn.cursor(name=f"retention_stream_{next(_names)}", row_factory=dict_row) as cur:
            cur.execute(query, params)
            yield iter(cur)
