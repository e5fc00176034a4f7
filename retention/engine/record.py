"""The run's record: its row in `<schema>.runs`, its audit entries, and the head file after it.

A run is recorded before its first change (a row `running`, the entry run_start) and closed
after its last (its outcome, and a closing entry with its totals and errors); the trail's last
entry then goes to the head file outside the database. A run whose connection was lost is
closed on a new connection; one that died is closed by the next run (retention.engine.runs).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from loguru import logger

from retention.audit.anchor import append_head, read_heads
from retention.audit.trail import AuditTrail, Entry, Stored, verify_anchors
from retention.engine.batch import BatchContext
from retention.engine.outcome import RunOptions, RunReport
from retention.engine.runs import ConnectionLostError, connection_lost_error, record_failed_run
from retention.engines import Connection, engine_of, errors, sql
from retention.errors import RetentionError
from retention.settings import Settings

CLOSING = {"interrupted": "run_interrupted", "failed": "run_failed"}  # otherwise run_end


class RunRecord:
    """The record of one run, on the run's connection."""

    def __init__(self, conn: Connection, settings: Settings, trail: AuditTrail) -> None:
        self.conn = conn
        self.settings = settings
        self.schema = settings.schema_name
        self.trail = trail

    def entry(
        self,
        event: str,
        outcome: str,
        run_id: uuid.UUID,
        *,
        ctx: BatchContext | None = None,
        detail: dict[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> Stored:
        """One audit entry of the run (of a phase when `ctx` is given), on `conn` (default:
        the run's connection)."""
        return self.trail.record(
            conn or self.conn,
            Entry(
                event=event,
                outcome=outcome,
                run_id=run_id,
                policy=ctx.policy.name if ctx else None,
                policy_sha256=ctx.policy.loaded.sha256 if ctx else None,
                phase=ctx.phase.name if ctx else None,
                action=ctx.phase.action if ctx else None,
                detail=detail or {},
            ),
        )

    def open(self, report: RunReport, options: RunOptions) -> None:
        """The run's row, `running`, and its run_start entry."""
        self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (run_id, command, host, os_user, pid) VALUES (%s, %s, %s, %s, %s)"
            ).format(sql.Identifier(self.schema, "runs")),
            (
                report.run_id,
                options.command,
                socket.gethostname(),
                self.trail.actor.get("os_user", ""),
                os.getpid(),
            ),
        )
        at = {
            "at": options.at.isoformat(),
            "phase": options.phase,
            "command": options.command,
            # which audit key made the subject digests (its public id, never the key): `audit
            # find` with another key says so rather than "no entry" (retention/cli/audit.py)
            "audit_key_id": self.trail.key.id,
        }
        self.entry("run_start", "started", report.run_id, detail=at)

    def close(self, report: RunReport) -> None:
        """The closing entry and the row's outcome, then the head file; nothing once the
        run's connection is lost (see `lost`)."""
        if self.conn.closed or self.conn.broken:
            return
        event = CLOSING.get(report.outcome, "run_end")
        last = self.entry(event, report.outcome, report.run_id, detail=detail(report))
        self.conn.execute(
            sql.SQL(
                "UPDATE {} SET outcome = %s, ended_at = CURRENT_TIMESTAMP(6) WHERE run_id = %s"
            ).format(sql.Identifier(self.schema, "runs")),
            (report.outcome, report.run_id),
        )
        self._write_head(last)

    def lost(
        self,
        exc: errors.Error,
        report: RunReport,
        connect: Callable[[], Connection] | None,
        give_up: Callable[[float], bool],
    ) -> ConnectionLostError:
        """The run's connection was lost: close the run as failed on a new connection once
        the database answers again; the error the run ends with."""
        return connection_lost_error(
            exc,
            lambda conn, what: record_failed_run(
                conn, self.schema, self.trail, report.run_id, detail(report, what)
            ),
            connect,
            give_up=give_up,
        )

    def _write_head(self, last: Stored) -> None:
        """Append the trail's last entry, once committed, to the head file outside the
        database (setting audit_head_file); a failure is logged and never fails the run."""
        path = self.settings.audit_head_file
        if path is None or engine_of(self.conn).session.in_transaction(self.conn):
            return
        try:
            earlier = read_heads(path, self.conn.info.dbname, self.schema)
            if earlier is not None:
                problem = verify_anchors(self.conn, self.schema, earlier.anchors[-1:])
                if problem is not None:
                    logger.error(
                        "the audit trail no longer holds the last entry the head file records: "
                        "{} (run 'retention audit verify')",
                        problem,
                    )
            append_head(path, self.conn.info.dbname, self.schema, last.seq, last.hash)
        except (OSError, RetentionError) as exc:
            reason = exc.message if isinstance(exc, RetentionError) else exc.strerror
            logger.warning(
                "audit head not appended to {}: {} (audit verify cannot detect removed last "
                "entries without it)",
                path,
                reason or type(exc).__name__,
            )


def detail(report: RunReport, error: str | None = None) -> dict[str, Any]:
    """What the run's closing entry says: its totals and errors."""
    totals: Counter[str] = Counter()
    for phase in report.phases:
        totals.update(phase.rows)
    failures = [p.error for p in report.phases if p.error] + [
        f"{p.policy}/{p.phase} not run: {p.refused}" for p in report.phases if p.refused
    ]
    return {
        "subjects": sum(p.acted for p in report.phases),
        "rows": dict(totals),
        "skipped_batches": sum(p.skipped_batches for p in report.phases),
        "errors": [*failures, error] if error else failures,
    }
