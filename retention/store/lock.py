"""One run at a time per database: a session-level advisory lock held for the whole run.

`retention run` and the daemon take the same lock. Whoever does not get it is told who holds it.
Runs left `running` by a process that died are marked `abandoned` once the lock is ours (the
lock of a dead session is released by the server, so holding it proves nobody is running).
`archive verify` only asks whether a run holds it (`in_progress`).
"""

from __future__ import annotations

import time

from retention.engines import Connection, sql
from retention.errors import RetentionError

RUN_LOCK = 0x7274_6E5F_7275_6E  # "rtn_run"


class RunInProgressError(RetentionError):
    """Another run holds the lock."""

    exit_code = 75  # EX_TEMPFAIL: try again later


def acquire(conn: Connection, schema: str, wait_seconds: float = 0.0) -> None:
    """Take the run lock, waiting up to `wait_seconds`; :class:`RunInProgressError` if held."""
    deadline = time.monotonic() + wait_seconds
    while True:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK,)).fetchone()
        if row and row[0]:
            return
        if time.monotonic() >= deadline:
            raise RunInProgressError(
                f"another run is in progress ({_holder(conn, schema)})",
                hint="wait for it to finish; runs never overlap",
            )
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))


def release(conn: Connection) -> None:
    if not (conn.closed or conn.broken):
        conn.execute("SELECT pg_advisory_unlock(%s)", (RUN_LOCK,))


def in_progress(conn: Connection) -> bool:
    """Whether a run holds the lock now (taken and given back at once when free)."""
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK,)).fetchone()
    if row and row[0]:
        conn.execute("SELECT pg_advisory_unlock(%s)", (RUN_LOCK,))
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
        activity = conn.execute(
            "SELECT a.pid, a.client_addr, a.backend_start FROM pg_locks l "
            "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' "
            "AND l.granted AND (l.classid::bigint << 32 | l.objid::bigint) = %s LIMIT 1",
            (RUN_LOCK,),
        ).fetchone()
        if activity is None:
            return "holder unknown"
        return f"server pid {activity[0]}, since {activity[2]:%Y-%m-%d %H:%M:%S}"
    return f"pid {row[0]} on {row[1]}, since {row[2]:%Y-%m-%d %H:%M:%S %Z}"
