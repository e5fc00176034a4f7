"""Writing values computed in this process back to the database, set-based.

The rows (primary key + new values) go into a temporary table of the session (emptied before
each use) in bulk (PostgreSQL COPY; MariaDB the driver's bulk protocol), then one UPDATE joined
to it changes the table (PostgreSQL `UPDATE ... FROM`; MariaDB `UPDATE ... JOIN`): no value
travels in SQL text, and a pseudonymisation key used to compute them never reaches the server.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from retention.catalog.introspect import Table
from retention.engines import Connection, engine_of, sql
from retention.engines.dialect import Dialect, Typed


def write_back(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> int:
    """Update `columns` of `table` from `rows` = (primary key..., new values...); a NULL new
    value leaves the column as it is. Returns the number of rows updated."""
    dialect = engine_of(conn).dialect
    temp = _staged(conn, dialect, table, columns, [], rows)
    return conn.execute(_update(dialect, table, columns, temp, [])).rowcount


def write_back_flagged(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    flags: Sequence[str],
    assignments: Sequence[tuple[str, sql.Composable]],
    params: Mapping[str, Any],
) -> list[int]:
    """As `write_back`, each row followed by boolean `flags` (staged columns, named so as not to
    clash with the table's) and with more `assignments` (column, expression of `r`, the row,
    `p`, the staged row, and `params`). Returns, per flag, how many of the rows the UPDATE
    changed had it set (on PostgreSQL, a row a trigger or a row-level security policy kept out
    is not counted)."""
    engine = engine_of(conn)
    dialect = engine.dialect
    temp = _staged(conn, dialect, table, columns, flags, rows)
    update = _update(dialect, table, columns, temp, assignments)
    if not engine.capabilities.update_returning:
        # counted before the UPDATE, in the batch's transaction: the action read these rows
        # locked, so they are the rows the UPDATE changes (MariaDB has no UPDATE ... RETURNING)
        counts = _counted(conn, table, temp, flags)
        conn.execute(update, dict(params))
        return counts
    query = sql.SQL("{} RETURNING {}").format(
        update, sql.SQL(", ").join(sql.Identifier("p", f) for f in flags)
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
    dialect: Dialect,
    table: Table,
    columns: Sequence[str],
    flags: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> sql.Composable:
    """Load `rows` into the session's staging table for these columns; returns its name."""
    primary = table.primary_key
    typed: list[tuple[str, Typed]] = [(n, table.columns[n]) for n in [*primary, *columns]]
    typed += [(f, "boolean") for f in flags]
    names = [n for n, _ in typed]
    types = [t if isinstance(t, str) else t.type for _, t in typed]
    # one staging table per target and column set, made empty before each use (another
    # phase's rows, same batch; on MariaDB, another batch's)
    digest = hashlib.sha256(repr((table.qname, names, types)).encode()).hexdigest()[:16]
    temp = dialect.temporary_table(f"retention_writeback_{digest}", typed)
    for statement in temp.renew:
        conn.execute(statement)
    engine_of(conn).bulk.load(conn, temp.name, names, rows)
    return temp.name


def _on_key(table: Table) -> sql.Composable:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("r", c), sql.Identifier("p", c))
        for c in table.primary_key
    )


def _update(
    dialect: Dialect,
    table: Table,
    columns: Sequence[str],
    temp: sql.Composable,
    more: Sequence[tuple[str, sql.Composable]],
) -> sql.Composed:
    kept = [
        (
            c,
            sql.SQL("coalesce({p}, {r})").format(
                p=sql.Identifier("p", c), r=sql.Identifier("r", c)
            ),
        )
        for c in columns
    ]
    return dialect.update_from(
        sql.Identifier(*table.qname), "r", temp, "p", _on_key(table), [*kept, *more]
    )


def _counted(
    conn: Connection,
    table: Table,
    temp: sql.Composable,
    flags: Sequence[str],
) -> list[int]:
    """Per flag, the staged rows that have it set and whose row is in `table`."""
    query = sql.SQL("SELECT {} FROM {} AS p JOIN {} AS r ON {}").format(
        sql.SQL(", ").join(
            sql.SQL("count(CASE WHEN {} THEN 1 END)").format(sql.Identifier("p", f)) for f in flags
        ),
        temp,
        sql.Identifier(*table.qname),
        _on_key(table),
    )
    row = conn.execute(query).fetchone()
    return [int(n) for n in row] if row is not None else [0] * len(flags)
