"""PostgreSQL's bulk transfer: COPY, in text into a table, in binary between two sessions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from retention.engines import Connection, sql


class Bulk:
    def load(
        self,
        conn: Connection,
        table: sql.Composable,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
    ) -> int:
        count = 0
        with conn.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(
                table, sql.SQL(", ").join(map(sql.Identifier, columns))
            )
        ) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def copy_between(self, source: Connection, target: Connection, table: sql.Composable) -> None:
        with (
            source.cursor().copy(sql.SQL("COPY {} TO STDOUT (FORMAT BINARY)").format(table)) as out,
            target.cursor().copy(
                sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(table)
            ) as into,
        ):
            for data in out:
                into.write(data)
