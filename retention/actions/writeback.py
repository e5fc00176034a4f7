"""Writing values computed in this process back to the database, set-based.

The rows (primary key + new values) go into a temporary table (emptied at commit) with COPY,
then one `UPDATE ... FROM` changes the table: no value travels in SQL text, and a
pseudonymisation key used to compute them never reaches the server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from retention.catalog.introspect import Table


def write_back(
    conn: psycopg.Connection[Any],
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    flags: int = 0,
    assignments: Sequence[sql.Composable] = (),
    params: Mapping[str, Any] | None = None,
) -> int:
    """Update `columns` of `table` from `rows` = (primary key..., new values..., flags...); a
    NULL new value leaves the column as it is. `flags` boolean columns `p.f0`... follow the
    values, for `assignments` (more `column = expression` of `r`, the row, and `p`, the staged
    row, with `params`). Returns the number of rows updated."""
    primary = table.primary_key
    names = [*primary, *columns, *(f"f{i}" for i in range(flags))]
    types = [table.columns[n].type for n in [*primary, *columns]] + ["boolean"] * flags
    # one staging table per target and column set, kept by the session, emptied at each commit:
    # creating and dropping a table per batch would churn the system catalogues
    digest = hashlib.sha256(repr((table.qname, names, types)).encode()).hexdigest()[:16]
    temp = sql.Identifier(f"retention_writeback_{digest}")
    conn.execute(
        sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
            temp,
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t))
                for n, t in zip(names, types, strict=True)
            ),
        )
    )
    conn.execute(sql.SQL("DELETE FROM {}").format(temp))  # another phase's rows, same batch
    with conn.cursor().copy(
        sql.SQL("COPY {} ({}) FROM STDIN").format(
            temp, sql.SQL(", ").join(map(sql.Identifier, names))
        )
    ) as copy:
        for row in rows:
            copy.write_row(row)
    query = sql.SQL("UPDATE {} AS r SET {} FROM {} AS p WHERE {}").format(
        sql.Identifier(*table.qname),
        sql.SQL(", ").join(
            [
                *(
                    sql.SQL("{c} = coalesce({p}, {r})").format(
                        c=sql.Identifier(c), p=sql.Identifier("p", c), r=sql.Identifier("r", c)
                    )
                    for c in columns
                ),
                *assignments,
            ]
        ),
        temp,
        sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("r", c), sql.Identifier("p", c))
            for c in primary
        ),
    )
    return conn.execute(query, params or None).rowcount
