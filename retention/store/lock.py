"""One run at a time per database: a session-level lock held for the whole run (the engine's:
PostgreSQL takes an advisory lock, see retention.engines.locks).

`retention run` and the daemon take the same lock. Whoever does not get it is told who holds it.
Runs left `running` by a process that died are marked `abandoned` once the lock is ours (the
lock of a dead session is released by the server, so holding it proves nobody is running).
`archive verify` only asks whether a run holds it (`in_progress`).
"""

from __future__ import annotations

import time

from retention.engines import Connection, engine_of, sql
from retention.errors import RetentionError


class RunInProgressError(RetentionError):
    """Another run holds the lock."""

    exit_code = 75  # EX_TEMPFAIL: try again later


def acquire(conn: Connection, schema: str, wait_seconds: float = 0.0) -> None:
    """Take the run lock, waiting up to `wait_seconds`; :class:`RunInProgressError` if held."""
    deadline = time.monotonic() + wait_seconds
    locks = engine_of(conn).locks
    while True:
        if locks.try_run_lock(conn):
            return
        if time.monotonic() >= deadline:
            raise RunInProgressError(
                f"another run is in progress ({_holder(conn, schema)})",
                hint="wait for it to finish; runs never overlap",
            )
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


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
    return f"pid {row[0]} on {row[1]}, since {row[2]:%Y-%m-%d %H:%M:%S %Z}"
