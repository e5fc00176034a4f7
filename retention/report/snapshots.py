"""Exposure snapshots: the figures stored at the end of every run, read back as a trend.

`record_after_run` is what a run calls once it has ended (retention.service.run); storing a
snapshot must never fail a run, so any error is logged (its primary message only) and the run
goes on.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from loguru import logger

from retention.engines import Connection, engine_of, sql
from retention.engines.errors import describe_error
from retention.engines.inserted import insert_returning
from retention.engines.params import Json
from retention.policy.bound import BoundPolicy
from retention.report.exposure import Exposure, compute_exposure
from retention.report.moments import iso
from retention.report.stored import document, instant
from retention.report.stored import run_id as stored_run_id

TABLE = "exposure"


@dataclass(frozen=True)
class Snapshot:
    """The exposure figures stored at one moment (after a run, or before the first one)."""

    snapshot_id: int
    taken_at: datetime
    run_id: UUID | None
    outcome: str | None  # the run's outcome
    exposure: Exposure

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            "taken_at": iso(self.taken_at),
            "run_id": str(self.run_id) if self.run_id else None,
            "outcome": self.outcome,
            "exposure": self.exposure.to_json(),
        }


def installed(conn: Connection, schema: str) -> bool:
    return engine_of(conn).catalogue.table_exists(conn, schema, TABLE)


def save_snapshot(
    conn: Connection, schema: str, exposure: Exposure, run_id: UUID | None = None
) -> int:
    """Store `exposure`; returns the snapshot's id."""
    table = sql.Identifier(schema, TABLE)
    row = insert_returning(
        conn,
        table,
        sql.SQL("INSERT INTO {} (at, run_id, figures) VALUES (%s, %s, %s)").format(table),
        (exposure.at, None if run_id is None else str(run_id), Json(exposure.to_json())),
        key="snapshot_id",
        returning=sql.Identifier("snapshot_id"),
    )
    return int(row[0])


def snapshots(conn: Connection, schema: str, limit: int = 60) -> list[Snapshot]:
    """The latest `limit` snapshots, oldest first (empty while the table does not exist)."""
    if not installed(conn, schema):
        return []
    runs = _runs_table(conn, schema)
    outcome = sql.SQL("r.outcome") if runs else sql.SQL("NULL")
    join = sql.SQL("LEFT JOIN {} AS r USING (run_id)").format(runs) if runs else sql.SQL("")
    rows = conn.execute(
        sql.SQL(
            "SELECT * FROM (SELECT e.snapshot_id, e.taken_at, e.run_id, {outcome}, e.figures "
            "FROM {table} AS e {join} ORDER BY e.taken_at DESC, e.snapshot_id DESC LIMIT %s) "
            "AS s ORDER BY taken_at, snapshot_id"
        ).format(outcome=outcome, table=sql.Identifier(schema, TABLE), join=join),
        (limit,),
    ).fetchall()
    return [
        Snapshot(int(r[0]), _instant(r[1]), stored_run_id(r[2]), r[3], _exposure(r[4]))
        for r in rows
    ]


def _instant(value: datetime) -> datetime:
    found = instant(value)
    assert found is not None  # taken_at is NOT NULL
    return found


def _exposure(figures: Any) -> Exposure:
    return Exposure.from_json(document(figures))


def _runs_table(conn: Connection, schema: str) -> sql.Composable | None:
    installed = engine_of(conn).catalogue.table_exists(conn, schema, "runs")
    return sql.Identifier(schema, "runs") if installed else None


def record_after_run(
    conn: Connection,
    policies: Sequence[BoundPolicy],
    at: date,
    run_id: UUID,
    *,
    schema: str = "retention",
    helpers: Sequence[Connection] = (),
) -> int | None:
    """Compute and store the exposure after run `run_id`; never raises (logs instead).
    `helpers`: idle connections to the same database that share the clock's work."""
    started = time.monotonic()
    if conn.closed or conn.broken:
        return None  # the run already reports the lost connection
    try:
        if not installed(conn, schema):
            logger.info("exposure snapshot not stored: 'retention init' has not created its table")
            return None
        exposure = compute_exposure(conn, policies, at, schema=schema, helpers=helpers)
        snapshot_id = save_snapshot(conn, schema, exposure, run_id)
    except Exception as exc:  # a snapshot must never fail the run that just ended
        logger.warning("exposure snapshot not stored: {}", describe_error(exc))
        return None
    logger.info("exposure snapshot {} stored ({:.1f} s)", snapshot_id, time.monotonic() - started)
    return snapshot_id
