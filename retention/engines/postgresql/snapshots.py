"""PostgreSQL shares a snapshot: exported by one transaction, imported by others."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from retention.engines import Connection, sql


class Snapshots:
    @contextmanager
    def transaction(self, conn: Connection, *, read_only: bool) -> Iterator[None]:
        access = "READ ONLY" if read_only else "READ WRITE"
        with conn.transaction():
            conn.execute(f"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, {access}")
            yield

    def export(self, main: Connection) -> str:
        row = main.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        return str(row[0])

    def join(self, helper: Connection, snapshot: str) -> None:
        helper.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        helper.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
