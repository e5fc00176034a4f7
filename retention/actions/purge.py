"""`purge`: delete the subjects and every related row, children first, in the batch's transaction.

Each table's rows are found through its own links while its parents still exist, so foreign
keys, plain-column links and polymorphic links (two levels deep or more) are all honoured. A
row the policy does not know about that still references a deleted row makes PostgreSQL refuse
the batch (foreign key violation): nothing is deleted and the error is reported.
"""

from __future__ import annotations

from typing import Any, ClassVar

import psycopg
from psycopg import sql

from retention.actions.base import Batch
from retention.plan.rows import member_condition
from retention.policy.expr import Params


class Purge:
    """Delete whole records."""

    name: ClassVar[str] = "purge"

    def apply(self, conn: psycopg.Connection[Any], batch: Batch) -> dict[str, int]:
        rows: dict[str, int] = {}
        for table in batch.policy.graph.deletion_order():
            params = Params(prefix="d")
            condition = member_condition(batch.policy, table, "r", batch.keys_sql(params), params)
            query = sql.SQL("DELETE FROM {} AS r WHERE {}").format(
                sql.Identifier(*table), condition
            )
            rows[batch.table_name(table)] = conn.execute(query, params.values).rowcount
        return rows
