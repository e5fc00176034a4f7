"""MariaDB reads one moment on one connection only: no snapshot export (`shares_snapshots` is
False, so the plan asks no helper to join one); a transaction that copies rows into temporary
tables reads each statement's own moment (retention.engines.snapshots.Snapshots)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from retention.engines import Connection
from retention.engines.pending import NotYetSupportedError


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

    def export(self, main: Connection) -> NoReturn:
        raise NotYetSupportedError(
            "snapshots.export is not supported on mariadb (no snapshot is shared between "
            "connections there)",
            hint="the plan runs on one connection there",
        )

    def join(self, helper: Connection, snapshot: str) -> NoReturn:
        self.export(helper)
