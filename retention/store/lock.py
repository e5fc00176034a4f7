"""One run at a time per database: a session-level lock held for the whole run (the engine's:
PostgreSQL takes an advisory lock, see retention.engines.locks).

`retention run` and the daemon take the same lock. Whoever does not get it is told who holds it.
Runs left `running` by a process that died are marked `abandoned` once the lock is ours (the
lock of a dead session is released by the server, so holding it proves nobody is running).
`archive verify` only asks whether a run holds it (`in_progress`).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC

from loguru import logger

from retention.engines import Connection, engine_of, sql
from retention.errors import RetentionError


class RunInProgressError(RetentionError):
    """Another run holds the lock."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class StoppedWaitingError(RetentionError):
    """A stop (SIGINT, SIGTERM) came while waiting for another run's lock: nothing ran."""

    exit_code = 130


def acquire(
    conn: Connection,
    schema: str,
    wait_seconds: float = 0.0,
    stop: threading.Event | None = None,
) -> None:
    """Take the run lock, waiting up to `wait_seconds`; :class:`RunInProgressError` if held
    then. A `stop` set meanwhile ends the wait at once (:class:`StoppedWaitingError`): an
    outside review saw SIGTERM ignored until the other run ended, then a run started."""
    deadline = time.monotonic() + wait_seconds
    locks = engine_of(conn).locks
    stop = stop or threading.Event()
    told = False
    while True:
        if locks.try_run_lock(conn):
            return  # a stop set before is the run's to honour (recorded as interrupted)
        if stop.is_set():
            raise StoppedWaitingError(
                "stopped while waiting for another run to finish: nothing was changed"
            )
        if time.monotonic() >= deadline:
            raise RunInProgressError(
                f"another run is in progress ({_holder(conn, schema)})",
                hint="wait for it to finish; runs never overlap",
            )
        if not told:
            logger.info(
                "another run is in progress ({}): waiting up to {:.0f} s for it to finish",
                _holder(conn, schema),
                wait_seconds,
            )
            told = True
        stop.wait(min(1.0, max(0.05, deadline - time.monotonic())))


def release(conn: Connection) -> None:
    if not (conn.closed or conn.broken):
        engine_of(conn).locks.release_run_lock(conn)


def in_progress(conn: Connection) -> bool:
    """Whether a run holds the lock now (taken and given back at once when free)."""
    locks = engine_of(conn).locks
    if locks.try_run_lock(conn):
        locks.release_run_lock(conn)
        return False
    return True


def _holder(conn: Connection, schema: str) -> str:
    row = conn.execute(
        sql.SQL(
            "SELECT pid, host, started_at FROM {} WHERE outcome = 'running' "
            "ORDER BY started_at DESC LIMIT 1"
        ).format(sql.Identifier(schema, "runs"))
    ).fetchone()
    if row is None:
        holder = engine_of(conn).locks.run_lock_holder(conn)
        if holder is None:
            return "holder unknown"
        if holder.since is None:
            return f"server pid {holder.session_id}"
        return f"server pid {holder.session_id}, since {holder.since:%Y-%m-%d %H:%M:%S}"
    # MariaDB's DATETIME is written in UTC and read without a zone: say it (a review saw
    # "since 2026-12-07 13:42:59 ", the zone left blank)
    since = row[2] if row[2].tzinfo is not None else row[2].replace(tzinfo=UTC)
    return f"pid {row[0]} on {row[1]}, since {since:%Y-%m-%d %H:%M:%S %Z}"
