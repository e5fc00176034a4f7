"""Run records that the run itself could not close: runs found dead by the next one, and a run
whose database connection was lost (recorded once the database answers again)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from retention.audit.trail import AuditTrail, Entry, mirror
from retention.engines import Connection, errors, sql
from retention.errors import KNOWN_CONDITIONS, DatabaseError, RetentionError

RECORD_LOST_SECONDS = 30.0  # how long a run whose connection was lost waits to record it


class ConnectionLostError(DatabaseError):
    """The run's database connection was lost (server restarted, backend terminated)."""


@dataclass(frozen=True)
class AbandonedRun:
    """A run that died without closing (killed, machine lost), as the next run finds it."""

    run_id: uuid.UUID
    command: str
    host: str
    pid: int
    started_at: datetime
    last_seen: datetime  # its last audit entry (its start when it recorded none)
    # its committed batch entries in the trail: one per phase of a batch (a pass of several
    # phases writes several; an outside review read 78 "batches" for 26 transactions), and
    # the subjects they name, counted in each
    batches: int
    subjects: int

    def describe(self) -> str:
        return (
            f"run {self.run_id} ({self.command}, pid {self.pid} on {self.host}), started "
            f"{self.started_at:%Y-%m-%d %H:%M:%S %Z}, "
            f"last seen {self.last_seen:%Y-%m-%d %H:%M:%S %Z}, "
            f"ended without closing after {self.batches} committed batch entr(ies) "
            f"({self.subjects} subject(s); one entry per phase of a batch): marked abandoned; "
            "what it left is done by this run"
        )


def abandon_stale_runs(conn: Connection, schema: str, trail: AuditTrail) -> list[AbandonedRun]:
    """Mark every run still `running` abandoned (the caller holds the run lock, so none is),
    with `ended_at` its last sign of life; each is logged and audited, and returned."""
    runs, audit = sql.Identifier(schema, "runs"), sql.Identifier(schema, "audit")
    with conn.transaction():
        # read and locked, then closed one by one (few: runs that died since the last one)
        rows = conn.execute(
            sql.SQL(
                "SELECT r.run_id, r.command, r.host, r.pid, r.started_at, "
                "coalesce((SELECT max(a.recorded_at) FROM {audit} AS a "
                "WHERE a.run_id = r.run_id), r.started_at), "
                "(SELECT count(*) FROM {audit} AS a WHERE a.run_id = r.run_id "
                "AND a.event = 'batch'), "
                "(SELECT coalesce(sum(a.subjects), 0) FROM {audit} AS a "
                "WHERE a.run_id = r.run_id AND a.event = 'batch') "
                "FROM {runs} AS r WHERE r.outcome = 'running' FOR UPDATE"
            ).format(runs=runs, audit=audit)
        ).fetchall()
        found = [
            AbandonedRun(
                uuid.UUID(str(row[0])),
                row[1],
                row[2],
                row[3],
                stored_utc(row[4]),
                max(stored_utc(row[4]), stored_utc(row[5])),
                int(row[6]),
                int(row[7]),
            )
            for row in sorted(rows, key=lambda r: stored_utc(r[4]))
        ]
        for run in found:
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET outcome = 'abandoned', ended_at = %s WHERE run_id = %s"
                ).format(runs),
                (run.last_seen, run.run_id),
            )
        stored = [
            trail.append(
                conn,
                Entry(
                    event="run_abandoned",
                    outcome="abandoned",
                    run_id=run.run_id,
                    detail={
                        "found_by": "next run",
                        "started_at": run.started_at.isoformat(),
                        "last_seen": run.last_seen.isoformat(),
                        "batches": run.batches,
                        "subjects": run.subjects,
                    },
                ),
            )
            for run in found
        ]
    for entry, run in zip(stored, found, strict=True):
        mirror(entry)
        logger.warning("an earlier run died: {}", run.describe())
    return found


def connection_lost_error(
    exc: errors.Error,
    record: Callable[[Connection, str], None],
    connect: Callable[[], Connection] | None,
    *,
    give_up: Callable[[float], bool],
) -> ConnectionLostError:
    """The error a run ends with when its connection is lost, after recording the failure
    through `record` (on a new connection, once the database answers again, within
    RECORD_LOST_SECONDS; `give_up(seconds)` waits and says whether to stop trying)."""
    said = (
        f"{KNOWN_CONDITIONS.get(exc.sqlstate, 'the server ended the session')} "
        f"(SQLSTATE {exc.sqlstate})"
        if exc.sqlstate
        else "the server closed the connection (restarted, backend terminated, or network)"
    )
    what = f"the database connection was lost during the run: {said}"
    logger.error("{}; recording the failure once the database answers again", what)
    recorded = connect is not None and _with_new_connection(
        connect, lambda conn: record(conn, what), give_up
    )
    hint = (
        "the batch under way was rolled back, every earlier batch is committed; run again "
        "once the database is back: the run goes on where it stopped"
    )
    if recorded:
        what += "; recorded in the audit trail (run_failed)"
    else:
        hint += (
            f". The failure could not be recorded (the database did not answer within "
            f"{RECORD_LOST_SECONDS:.0f} s): the next run marks this run abandoned and says so"
        )
        logger.error("the failure of this run could not be recorded: the database is still away")
    return ConnectionLostError(what, hint=hint)


def _with_new_connection(
    connect: Callable[[], Connection],
    work: Callable[[Connection], None],
    give_up: Callable[[float], bool],
) -> bool:
    deadline = time.monotonic() + RECORD_LOST_SECONDS
    delay = 0.5
    while True:
        try:
            with connect() as conn:
                work(conn)
                return True
        except (RetentionError, errors.Error):
            delay = min(delay, deadline - time.monotonic())
            if delay <= 0 or give_up(delay):
                return False
            delay *= 2


def record_failed_run(
    conn: Connection,
    schema: str,
    trail: AuditTrail,
    run_id: uuid.UUID,
    detail: Mapping[str, Any],
) -> None:
    """Close a run still marked `running` as failed, with its run_failed entry (nothing when
    it is no longer running: a later run found it and recorded it as abandoned)."""
    with conn.transaction():
        changed = conn.execute(
            sql.SQL(
                "UPDATE {} SET outcome = 'failed', ended_at = %s WHERE run_id = %s "
                "AND outcome = 'running'"
            ).format(sql.Identifier(schema, "runs")),
            (datetime.now(UTC), run_id),
        ).rowcount
        if changed != 1:
            return
        stored = trail.append(
            conn, Entry(event="run_failed", outcome="failed", run_id=run_id, detail=dict(detail))
        )
    mirror(stored)


def stored_utc(moment: datetime) -> datetime:
    """A time read from the tool's tables: aware on PostgreSQL (timestamptz), UTC without a
    zone on MariaDB (DATETIME, written in UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
