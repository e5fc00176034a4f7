"""Several connections reading one moment of the database (the plan's and the exposure's slices,
retention.plan.slices).

Only an engine whose `Capabilities.shares_snapshots` is true implements them (PostgreSQL:
`pg_export_snapshot`); MariaDB/MySQL have no snapshot export, and the plan computes every slice
on its own connection there (docs/ENGINES.md, 2.8).
"""

from __future__ import annotations

from typing import Protocol

from retention.engines.connection import Connection


class Snapshots(Protocol):
    def export(self, main: Connection) -> str:
        """The snapshot of `main`'s REPEATABLE READ transaction, for other connections to read
        while that transaction stays open."""
        ...

    def join(self, helper: Connection, snapshot: str) -> None:
        """Begin a read on `helper` of `snapshot` (raises `errors.Error` when it cannot: e.g.
        the exporting transaction ended); the caller ends that transaction."""
        ...
