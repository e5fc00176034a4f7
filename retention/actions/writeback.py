"""Writing values computed in this process back to the database, set-based.

The rows (primary key + new values) go into a temporary table (emptied at commit) with COPY,
then one `UPDATE ... FROM` changes the table: no value travels in SQL text, and a
pseudonymisation key used to compute them never reaches the server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from retention.catalog.introspect import Table
from retention.engines import Connection, engine_of, sql


def write_back(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> int:
    """Update `columns` of `table` from `rows` = (primary key..., new values...); a NULL new
    value leaves the column as it is. Returns the number of rows updated."""
    temp = _staged(conn, table, columns, [], rows)
    return conn.execute(_update(table, columns, temp, [])).rowcount


def write_back_flagged(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    flags: Sequence[str],
    assignments: Sequence[sql.Composable],
    params: Mapping[str, Any],
) -> list[int]:
    """As `write_back`, each row followed by boolean `flags` (staged columns, named so as not to
    clash with the table's) and with more `assignments` (`column = expression` of `r`, the row,
    `p`, the staged row, and `params`). Returns, per flag, how many of the rows the UPDATE
    changed had it set (a row a trigger or a row-level security policy kept out is not
    counted)."""
    temp = _staged(conn, table, columns, flags, rows)
    query = sql.SQL("{} RETURNING {}").format(
        _update(table, columns, temp, assignments),
        sql.SQL(", ").join(sql.Identifier("p", f) for f in flags),
    )
    # always with a mapping: the query is converted, so `%%` in a default reads as `%`
    changed = conn.execute(query, dict(params)).fetchall()
    return [sum(1 for row in changed if row[i]) for i in range(len(flags))]


def flag_names(count: int, taken: Sequence[str]) -> list[str]:
    """`count` staging column names that are not in `taken` (the table's column names)."""
    prefix = "retention_flag_"
    while any(name.startswith(prefix) for name in taken):
        prefix = "_" + prefix
    return [f"{prefix}{i}" for i in range(count)]


def _staged(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    flags: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> sql.Identifier:
    """Load `rows` into the session's staging table for these columns (bulk: PostgreSQL COPY);
    returns its name."""
    primary = table.primary_key
    names = [*primary, *columns, *flags]
    types = [table.columns[n].type for n in [*primary, *columns]] + ["boolean"] * len(flags)
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
    engine_of(conn).bulk.load(conn, temp, names, rows)
    return temp


def _update(
    table: Table, columns: Sequence[str], temp: sql.Identifier, more: Sequence[sql.Composable]
) -> sql.Composed:
    return sql.SQL("UPDATE {} AS r SET {} FROM {} AS p WHERE {}").format(
        sql.Identifier(*table.qname),
        sql.SQL(", ").join(
            [
                *(
                    sql.SQL("{c} = coalesce({p}, {r})").format(
                        c=sql.Identifier(c), p=sql.Identifier("p", c), r=sql.Identifier("r", c)
                    )
                    for c in columns
                ),
                *more,
            ]
        ),
        temp,
        sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("r", c), sql.Identifier("p", c))
            for c in table.primary_key
        ),
    )
