"""MariaDB streams a result through an unbuffered cursor (a named cursor of the engine's
connection, cursor.py): rows are read as they arrive, nothing else runs on the connection until
the block ends."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from psycopg.rows import dict_row

from retention.engines import Connection, sql

_names = itertools.count(1)


class Rows:
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
