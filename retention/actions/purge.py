"""`purge`: delete the subjects and every related row, children first, in the batch's transaction.

The records are found once per batch, parents first (see retention.rows.records), then each
table is emptied of its member rows with one indexed DELETE per link, children before parents,
so foreign keys, plain-column links and polymorphic links (two levels deep or more) are all
honoured. A row the policy does not know about that still references a deleted row makes
PostgreSQL refuse the batch (foreign key violation): nothing is deleted and the error is reported.
"""

from __future__ import annotations

from typing import ClassVar

from retention.actions.base import Batch
from retention.engines import Connection
from retention.rows import records


class Purge:
    """Delete whole records."""

    name: ClassVar[str] = "purge"

    def apply(self, conn: Connection, batch: Batch) -> dict[str, int]:
        found = records.collect(conn, batch.policy, batch.keys, kept=batch.kept)
        return records.delete(conn, found)
