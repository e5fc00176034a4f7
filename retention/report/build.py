"""The report as plain data: every section, from one database, and its stable JSON shape.

``{"report": {...}, "exposure": {...}, "trend": [...], "inventory": {...}, "forecast": {...},
"history": {...}}``: `retention report --format json` prints it, the HTML page renders it.
`report.binary_log` says what the server's own log of changes keeps of purged and pseudonymised
values, and for how long (retention.engines.binlog).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata
from typing import Any

from retention.audit.anchor import Anchor
from retention.audit.approvals import Rules
from retention.engines import Connection, engine_of
from retention.engines.binlog import BinaryLog
from retention.policy.bound import BoundPolicy
from retention.report.exposure import Exposure, compute_exposure, last_scan
from retention.report.forecast import Forecast, compute_forecast
from retention.report.history import History, read_history
from retention.report.inventory import Inventory, build_inventory
from retention.report.moments import iso
from retention.report.snapshots import Snapshot, snapshots

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Report:
    """Everything the report shows."""

    generated_at: datetime
    at: date
    database: str
    timezone: str
    policies: tuple[str, ...]
    exposure: Exposure
    trend: tuple[Snapshot, ...]
    inventory: Inventory
    forecast: Forecast
    history: History
    # what the server's own log of changes keeps of purged values (binlog, archived WAL)
    binary_log: BinaryLog

    def to_json(self) -> dict[str, Any]:
        return {
            "report": {
                "format": FORMAT_VERSION,
                "tool_version": _version(),
                "generated_at": iso(self.generated_at),
                "at": self.at.isoformat(),
                "database": self.database,
                "timezone": self.timezone,
                "policies": list(self.policies),
                "binary_log": self.binary_log.to_json(),
            },
            "exposure": self.exposure.to_json(),
            "trend": [s.to_json() for s in self.trend],
            "inventory": self.inventory.to_json(),
            "forecast": self.forecast.to_json(),
            "history": self.history.to_json(),
        }


def build_report(
    conn: Connection,
    policies: Sequence[BoundPolicy],
    at: date,
    *,
    schema: str = "retention",
    timezone: str = "Europe/Paris",
    approvals: Rules | None = None,
    anchors: Sequence[Anchor] | None = None,
) -> Report:
    """Compute every section (each from its own consistent snapshot). `anchors`: audit entries
    known from outside the database (the head file), checked with the chain."""
    return Report(
        generated_at=datetime.now(UTC),
        at=at,
        database=conn.info.dbname,
        timezone=timezone,
        policies=tuple(p.name for p in policies),
        exposure=compute_exposure(conn, policies, at, schema=schema),
        trend=tuple(snapshots(conn, schema)),
        inventory=_inventory(conn, policies, schema),
        forecast=compute_forecast(conn, policies, at, schema=schema, approvals=approvals),
        history=read_history(conn, schema, policies, approvals=approvals, anchors=anchors),
        binary_log=engine_of(conn).binary_log(conn),
    )


def _inventory(conn: Connection, policies: Sequence[BoundPolicy], schema: str) -> Inventory:
    scan_id, scanned_at, verdicts = last_scan(conn, schema)
    return build_inventory(scan_id, scanned_at, verdicts or (), policies)


def _version() -> str:
    try:
        return metadata.version("retention")
    except metadata.PackageNotFoundError:
        return "unknown"
