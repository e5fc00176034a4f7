"""MariaDB's side of the engine seam: what it implements is reached through the engine object,
as callers reach it (`engine_of(conn)`), on the real server."""

from __future__ import annotations

from retention.engines import Connection, engine_of, sql


def test_bulk_load_through_the_engine_writes_every_row(mariadb_conn: Connection) -> None:
    mariadb_conn.execute("CREATE TABLE t (k int PRIMARY KEY, s varchar(20)) ENGINE=InnoDB")
    rows = [(1, "a"), (2, None), (3, "tab\\there")]
    assert (
        engine_of(mariadb_conn).bulk.load(mariadb_conn, sql.Identifier("t"), ("k", "s"), rows) == 3
    )
    assert [tuple(r) for r in mariadb_conn.execute("SELECT k, s FROM t ORDER BY k")] == rows
