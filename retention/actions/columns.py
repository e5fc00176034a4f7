"""Column actions done in SQL, set-based: `erase` and `generalize` (one UPDATE per table)."""

from __future__ import annotations

from typing import ClassVar

from retention.actions.base import Batch
from retention.engines import Connection, sql
from retention.policy.expr import Params
from retention.policy.relations import QName
from retention.rows.members import member_condition
from retention.rows.values import new_value, pending


def _update(conn: Connection, batch: Batch, table: QName) -> int:
    params = Params(prefix="u")
    items = [item for item in batch.phase.columns if item.table.qname == table]
    ref = {item.column.name: sql.Identifier("r", item.column.name) for item in items}
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(
            sql.Identifier(i.column.name),
            new_value(batch.phase.action, i, ref[i.column.name], params),
        )
        for i in items
    )
    todo = sql.SQL(" OR ").join(
        pending(batch.phase.action, i, ref[i.column.name], params) for i in items
    )
    member = member_condition(batch.policy, table, "r", batch.keys_sql(params), params)
    query = sql.SQL("UPDATE {} AS r SET {} WHERE {} AND ({})").format(
        sql.Identifier(*table), assignments, member, todo
    )
    return conn.execute(query, params.values).rowcount


class _ColumnAction:
    name: ClassVar[str]

    def apply(self, conn: Connection, batch: Batch) -> dict[str, int]:
        return {batch.table_name(t): self.table(conn, batch, t) for t in batch.phase.tables}

    def table(self, conn: Connection, batch: Batch, table: QName) -> int:
        """Apply the phase to one table; returns the rows changed."""
        return _update(conn, batch, table)


class Erase(_ColumnAction):
    """NULL, the policy's neutral value, or the column's default for NOT NULL columns."""

    name = "erase"


class Generalize(_ColumnAction):
    """Dates to year or month, postal codes to department, numbers to ranges."""

    name = "generalize"
