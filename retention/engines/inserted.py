"""One row inserted and read back, on every engine.

`INSERT ... RETURNING` where the engine has it (PostgreSQL; MariaDB 10.5 and later: capability
`insert_returning`); else (MySQL 8) the INSERT, then the row by the key the session's last
INSERT generated (`Dialect.generated_key`: MySQL's `LAST_INSERT_ID()`, per session, so another
session's insert in between is never read), both in one transaction.
"""

from __future__ import annotations

from typing import Any

from retention.engines import Connection, engine_of, sql


def insert_returning(
    conn: Connection,
    table: sql.Composable,
    insert: sql.Composed,
    params: Any,
    *,
    key: str,
    returning: sql.Composable | None = None,
) -> Any:
    """The row `insert` (one row into `table`, whose generated key is `key`) made: its
    `returning` columns (every column when None)."""
    engine = engine_of(conn)
    columns = returning if returning is not None else sql.SQL("*")
    if engine.capabilities.insert_returning:
        row = conn.execute(sql.SQL("{} RETURNING {}").format(insert, columns), params).fetchone()
    else:
        with conn.transaction():
            conn.execute(insert, params)
            row = conn.execute(
                sql.SQL("SELECT {} FROM {} WHERE {}").format(
                    columns, table, engine.dialect.generated_key(sql.Identifier(key))
                )
            ).fetchone()
    assert row is not None
    return row
