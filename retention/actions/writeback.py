"""Writing values computed in this process back to the database, set-based.

The rows (primary key + new values) go into a temporary table with COPY, then one
`UPDATE ... FROM` changes the table: no value travels in SQL text, and a pseudonymisation key
used to compute them never reaches the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

from retention.catalog.introspect import Table

_TEMP = sql.Identifier("retention_writeback")


def write_back(
    conn: psycopg.Connection[Any],
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> int:
    """Update `columns` of `table` from `rows` = (primary key..., new values...); a NULL new
    value leaves the column as it is. Returns the number of rows updated."""
    primary = table.primary_key
    names = [*primary, *columns]
    conn.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP").format(
            _TEMP,
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(table.columns[n].type))
                for n in names
            ),
        )
    )
    with conn.cursor().copy(
        sql.SQL("COPY {} ({}) FROM STDIN").format(
            _TEMP, sql.SQL(", ").join(map(sql.Identifier, names))
        )
    ) as copy:
        for row in rows:
            copy.write_row(row)
    query = sql.SQL("UPDATE {} AS r SET {} FROM {} AS p WHERE {}").format(
        sql.Identifier(*table.qname),
        sql.SQL(", ").join(
            sql.SQL("{c} = coalesce({p}, {r})").format(
                c=sql.Identifier(c), p=sql.Identifier("p", c), r=sql.Identifier("r", c)
            )
            for c in columns
        ),
        _TEMP,
        sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("r", c), sql.Identifier("p", c))
            for c in primary
        ),
    )
    count = conn.execute(query).rowcount
    conn.execute(sql.SQL("DROP TABLE {}").format(_TEMP))
    return count
