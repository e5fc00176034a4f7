"""Several connections reading one moment of the database (the plan's and the exposure's slices,
retention.plan.slices).

Where `Capabilities.shares_snapshots` is true (PostgreSQL: `pg_export_snapshot`), helpers read
the main connection's snapshot, and the slices' figures are those of one moment. MariaDB/MySQL
have no snapshot export: there `export` gives an empty token and `join` begins a transaction in
which each statement reads its own moment, as the main connection's statements already do there
(docs/ENGINES.md, 2.8); the slices partition the keys all the same, and each batch re-checks its
subjects under lock. Every engine implements `transaction`: one connection reading one moment
where it can (the plan's figures, `check --explain`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from retention.engines.connection import Connection


class Snapshots(Protocol):
    def transaction(self, conn: Connection, *, read_only: bool) -> AbstractContextManager[None]:
        """A transaction (opened here, ended with the block as `conn.transaction()` ends it)
        in which every statement reads the same snapshot: REPEATABLE READ, its isolation set
        before it starts (MariaDB: `SET TRANSACTION` then `START TRANSACTION WITH CONSISTENT
        SNAPSHOT`; PostgreSQL: its first statement). Not within another transaction.

        Not `read_only` (the plan, exposure and forecast store the clock of every subject in
        temporary tables) on MariaDB: READ COMMITTED, each statement reading its own snapshot.
        In REPEATABLE READ, InnoDB reads the rows an `INSERT ... SELECT` or `CREATE ...
        SELECT` copies with shared next-key locks, held until the commit: the application
        could not change nor add a patient while the plan ran (seconds; tens at 758,912
        patients), and a row it held made the plan wait, then fail. Each statement that reads
        the data is whole in itself (one clock, one figure); figures of one exposure may then
        come from moments a few seconds apart, and each batch re-checks its subjects under
        lock anyway."""
        ...

    def export(self, main: Connection) -> str:
        """The snapshot of `main`'s REPEATABLE READ transaction, for other connections to read
        while that transaction stays open ("" where none is shared: see the module)."""
        ...

    def join(self, helper: Connection, snapshot: str) -> None:
        """Begin a read on `helper` of `snapshot` (raises `errors.Error` when it cannot: e.g.
        the exporting transaction ended; where none is shared, a transaction whose statements
        read their own moments); the caller ends that transaction."""
        ...
