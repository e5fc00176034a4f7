"""The run's connections: its own, and helpers like it (setting workers).

Helpers run a pass's batches side by side, or the slices of the plan and of the exposure
snapshot. Each must reach the run's own database and server, and gets the run's calendar zone
and search path; when they cannot all be opened (max_connections reached, another database)
the work goes on the run's connection alone, more slowly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from loguru import logger

from retention import db
from retention.engines import Connection, engine_of, errors
from retention.errors import RetentionError
from retention.plan.slices import worth_slicing
from retention.policy.bound import BoundPolicy
from retention.settings import Settings


class Connections:
    """The run's connection (`main`) and how to open helpers (`connect`)."""

    def __init__(
        self, conn: Connection, settings: Settings, connect: Callable[[], Connection] | None
    ) -> None:
        """`connect` opens helpers; by default, connections like the run's, from the
        settings' database_url."""
        self.main = conn
        self.settings = settings
        if connect is None and settings.database_url is not None:
            connect = partial(db.connect, settings)
        self.connect = connect

    @property
    def lost(self) -> bool:
        """The run's connection is closed or broken."""
        return self.main.closed or self.main.broken

    def open(
        self, count: int | None = None, doing: str = "batches run one after the other"
    ) -> list[Connection]:
        """`count` helpers (default: the setting workers); none (`doing`, on the run's
        connection alone) with workers = 1, or when they cannot all be opened or do not reach
        the run's own database and server."""
        count = self.settings.workers if count is None else count
        if count < 1 or self.settings.workers < 2 or self.connect is None:
            return []
        opened: list[Connection] = []
        try:
            # the run's calendar zone and search path (the engine's pinned settings): a
            # batch's re-check and an archive's timestamps must read dates as the plan did
            home, pinned = _identity(self.main), engine_of(self.main).session.pinned(self.main)
            for _ in range(count):
                opened.append(self._open_like(home, pinned))
        except (RetentionError, errors.Error) as exc:
            close_all(opened)
            reason = exc.message if isinstance(exc, RetentionError) else type(exc).__name__
            logger.warning(
                "{}: {} more connection(s) could not be opened ({})", doing, count, reason
            )
            return []
        return opened

    def _open_like(self, home: tuple[Any, ...], pinned: dict[str, str]) -> Connection:
        assert self.connect is not None
        conn = self.connect()
        try:
            if _identity(conn) != home:
                raise RetentionError(
                    "they would reach another database than the run's (database_url)"
                )
            engine_of(conn).session.pin(conn, pinned)
        except (RetentionError, errors.Error):
            conn.close()
            raise
        return conn

    @contextmanager
    def helpers(self, doing: str, policies: list[BoundPolicy]) -> Iterator[list[Connection]]:
        """workers - 1 helpers while the block runs, closed after it; none once the run's
        connection is lost, or when no subject table is large enough to slice."""
        try:
            wanted = (
                not self.lost and self.settings.workers > 1 and worth_slicing(self.main, policies)
            )
        except errors.Error:  # the run's connection reports it where it matters
            wanted = False
        with closing(self.open(self.settings.workers - 1, doing) if wanted else []) as opened:
            yield opened


@contextmanager
def closing(opened: list[Connection]) -> Iterator[list[Connection]]:
    """`opened` while the block runs, closed after it, except when aborted: a helper's
    cancelled statement may still be ending under its thread, closing its connection then is
    unsafe; the process exit closes it."""
    try:
        yield opened
    except KeyboardInterrupt:
        opened = []
        raise
    finally:
        close_all(opened)


def close_all(opened: list[Connection]) -> None:
    for conn in opened:
        conn.close()


def _identity(conn: Connection) -> tuple[Any, ...]:
    """What tells a database apart (the engine's `Session.identity`)."""
    return engine_of(conn).session.identity(conn)
