"""MariaDB reads one moment on one connection only: no snapshot export (`shares_snapshots` is
False); a transaction that copies rows into temporary tables reads each statement's own moment
(retention.engines.snapshots.Snapshots), and so do helpers evaluating slices of a clock: `export`
gives no snapshot and `join` begins such a transaction (retention.plan.slices)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from retention.engines import Connection


class Snapshots:
    @contextmanager
    def transaction(self, conn: Connection, *, read_only: bool) -> Iterator[None]:
        from retention.engines.mariadb.connection import MariaDBConnection

        assert isinstance(conn, MariaDBConnection)
        if read_only:
            with conn.snapshot_transaction(read_only=True):
                yield
            return
        # its statements copy rows into temporary tables: READ COMMITTED (the session's), so
        # that InnoDB reads them without locks (retention.engines.snapshots.Snapshots)
        with conn.transaction():
            yield

    def export(self, main: Connection) -> str:
        return ""  # nothing to share: each statement reads its own moment, the main one's too

    def join(self, helper: Connection, snapshot: str) -> None:
        # READ COMMITTED (the session's): the slice's clock copied into a temporary table
        # without locking the rows it reads, as the main connection's statements do
        helper.execute("START TRANSACTION")
