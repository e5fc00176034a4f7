"""Column actions done in SQL, set-based: `erase` and `generalize` (one UPDATE per table)."""

from __future__ import annotations

from typing import ClassVar

from retention.actions.base import Batch, per_table
from retention.engines import Connection, engine_of, sql
from retention.policy.expr import Params
from retention.policy.relations import QName
from retention.rows.members import members
from retention.rows.values import new_value, pending


def _update(conn: Connection, batch: Batch, table: QName) -> int:
    dialect = engine_of(conn).dialect
    params = Params(prefix="u")
    items = [item for item in batch.phase.columns if item.table.qname == table]
    ref = {item.column.name: sql.Identifier("r", item.column.name) for item in items}
    action = batch.phase.action
    assignments = [
        (i.column.name, new_value(action, i, ref[i.column.name], params, dialect=dialect))
        for i in items
    ]
    todo = sql.SQL(" OR ").join(
        pending(action, i, ref[i.column.name], params, dialect=dialect) for i in items
    )
    rows = members(
        batch.policy, table, "r", batch.keys_sql(params, dialect), params, dialect=dialect
    )
    query = dialect.update(
        sql.Identifier(*table),
        "r",
        assignments,
        sql.SQL("{} AND ({})").format(rows.condition, todo),
        join=rows,
    )
    return conn.execute(query, params.values).rowcount


class _ColumnAction:
    name: ClassVar[str]

    def apply(self, conn: Connection, batch: Batch) -> dict[str, int]:
        return per_table(conn, batch, lambda changing, t: self.table(changing, batch, t))

    def table(self, conn: Connection, batch: Batch, table: QName) -> int:
        """Apply the phase to one table; returns the rows changed."""
        return _update(conn, batch, table)


class Erase(_ColumnAction):
    """NULL, the policy's neutral value, or the column's default for NOT NULL columns."""

    name = "erase"


class Generalize(_ColumnAction):
    """Dates to year or month, postal codes to department, numbers to ranges."""

    name = "generalize"
