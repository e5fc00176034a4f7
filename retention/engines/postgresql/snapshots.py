"""PostgreSQL shares a snapshot: exported by one transaction, imported by others."""

from __future__ import annotations

from retention.engines import Connection, sql


class Snapshots:
    def export(self, main: Connection) -> str:
        row = main.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        return str(row[0])

    def join(self, helper: Connection, snapshot: str) -> None:
        helper.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        helper.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
