"""`purge`: delete the subjects and every related row, children first, in the batch's transaction.

The records are found once per batch, parents first (see retention.rows.records), then each
table is emptied of its member rows with one indexed DELETE per link, children before parents,
so foreign keys, plain-column links and polymorphic links (two levels deep or more) are all
honoured. A row the policy does not know about that still references a deleted row makes
PostgreSQL refuse the batch (foreign key violation): nothing is deleted and the error is reported.
The rows of tables without transactions (MyISAM, Aria) are deleted first, on the batch's aside
connection, each statement committed by itself (retention.actions.base.Aside).
"""

from __future__ import annotations

from typing import ClassVar

from retention.actions.base import Batch
from retention.engines import Connection
from retention.rows import records
from retention.rows.records import no_late_rows


class Purge:
    """Delete whole records."""

    name: ClassVar[str] = "purge"

    def apply(self, conn: Connection, batch: Batch) -> dict[str, int]:
        found = records.collect(conn, batch.policy, batch.keys, kept=batch.kept)
        aside = batch.aside
        if aside is None or aside.tables.isdisjoint(batch.policy.graph.tables):
            return records.delete(conn, found)
        # tables without transactions: their rows deleted aside, children first, from the
        # records as that connection finds them (both found before anything is deleted:
        # rows below a parent deleted aside are found here through this connection's own)
        with aside.connection() as other:
            theirs = records.collect(other, batch.policy, batch.keys, kept=batch.kept)
            done = records.delete(other, theirs, aside.tables.__contains__)
        done.update(records.delete(conn, found, lambda t: t not in aside.tables))
        no_late_rows(conn, found)
        order = [f"{s}.{t}" for s, t in batch.policy.graph.deletion_order()]
        return {label: done[label] for label in order if label in done}
