"""The inventory: scans stored in the tool's schema, the latest verdict per column, and what
changed since the previous scan.

A scan may cover part of the database (``--schema``, ``--table``), so the inventory of record
is the latest verdict of each column that still exists, whichever scan gave it. That is what
coverage is checked against::

    gaps = coverage_gaps(latest_inventory(conn, schema=settings.schema_name), policies)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from retention.discovery.model import ColumnVerdict, ScanResult
from retention.engines import Connection, engine_of, sql
from retention.engines.inserted import insert_returning
from retention.engines.params import Json
from retention.errors import DatabaseError

# the latest verdict of each column before the scan `before` (a window: every engine has it)
_LATEST = """
SELECT v.schema_name, v.table_name, v.column_name, v.entity, v.score, v.evidence
FROM (SELECT c.schema_name, c.table_name, c.column_name, c.entity, c.score, c.evidence,
             row_number() OVER (PARTITION BY c.schema_name, c.table_name, c.column_name
                                ORDER BY c.scan_id DESC) AS n
      FROM {columns} c
      WHERE c.scan_id < %(before)s) v
WHERE v.n = 1
ORDER BY v.schema_name, v.table_name, v.column_name
"""


@dataclass(frozen=True)
class Change:
    """A column whose verdict changed: it became personal, stopped, or changed kind."""

    schema: str
    table: str
    column: str
    before: str | None  # entity; None: not personal (or not scanned before, see ``new``)
    after: str | None
    new: bool = False  # the column had never been scanned

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table}.{self.column}"

    @property
    def kind(self) -> str:
        if self.after is None:
            return "stopped"
        return "became" if self.before is None else "changed"

    def render(self) -> str:
        if self.after is None:
            return f"- {self.label}: no longer personal (was {self.before})"
        if self.before is None:
            what = "new column" if self.new else "now personal"
            return f"+ {self.label}: {what}, {self.after}"
        return f"~ {self.label}: {self.before} -> {self.after}"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "table": self.table,
            "column": self.column,
            "before": self.before,
            "after": self.after,
            "new": self.new,
        }


def installed(conn: Connection, schema: str = "retention") -> bool:
    """True when the inventory tables exist (``retention init`` has run)."""
    return engine_of(conn).catalogue.table_exists(conn, schema, "scan_columns")


def _require(conn: Connection, schema: str) -> None:
    if not installed(conn, schema):
        raise DatabaseError(
            f"the inventory does not exist in schema '{schema}'",
            hint="run 'retention init' once as the owner, then 'retention scan'",
        )


def save_scan(
    conn: Connection,
    result: ScanResult,
    *,
    schema: str = "retention",
    scope: dict[str, Any] | None = None,
) -> int:
    """Store a scan (verdicts and evidence, no value); returns its id."""
    _require(conn, schema)
    with conn.transaction():
        scans = sql.Identifier(schema, "scans")
        row = insert_returning(
            conn,
            scans,
            sql.SQL(
                "INSERT INTO {} (scanned_at, scope, seconds, columns, personal) "
                "VALUES (%s, %s, %s, %s, %s)"
            ).format(scans),
            (
                result.scanned_at,
                Json(scope or {}),
                result.seconds,
                len(result.columns),
                len(result.personal),
            ),
            key="scan_id",
            returning=sql.Identifier("scan_id"),
        )
        scan_id = int(row[0])
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL(
                    "INSERT INTO {} (scan_id, schema_name, table_name, column_name, entity, "
                    "score, evidence) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                ).format(sql.Identifier(schema, "scan_columns")),
                [
                    (scan_id, c.schema, c.table, c.column, c.entity, c.score, Json(c.evidence))
                    for c in result.columns
                ],
            )
    return scan_id


def latest_inventory(
    conn: Connection, *, schema: str = "retention", before: int | None = None
) -> list[ColumnVerdict]:
    """The latest verdict of every column that still exists (optionally: from the scans
    before the scan ``before``), in column order."""
    _require(conn, schema)
    params = {"before": before if before is not None else 2**62}
    query = sql.SQL(_LATEST).format(columns=sql.Identifier(schema, "scan_columns"))
    latest = conn.execute(query, params).fetchall()
    keys = [(str(r[0]), str(r[1]), str(r[2])) for r in latest]
    existing = engine_of(conn).catalogue.existing_columns(conn, keys, tool_schema=schema)
    rows = [r for key, r in zip(keys, latest, strict=True) if key in existing]
    return [
        ColumnVerdict(r[0], r[1], r[2], r[3], round(float(r[4]), 2), _document(r[5])) for r in rows
    ]


def _document(value: Any) -> dict[str, Any]:
    """Evidence as stored: jsonb (PostgreSQL gives a dict) or JSON text (MariaDB)."""
    return dict(json.loads(value) if isinstance(value, str) else value)


def last_scan_id(conn: Connection, *, schema: str = "retention") -> int | None:
    """The id of the latest scan, or None when nothing was ever scanned."""
    _require(conn, schema)
    row = conn.execute(
        sql.SQL("SELECT max(scan_id) FROM {}").format(sql.Identifier(schema, "scans"))
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def scan_time(conn: Connection, scan_id: int, *, schema: str = "retention") -> datetime:
    """When the scan `scan_id` ran."""
    row = conn.execute(
        sql.SQL("SELECT scanned_at FROM {} WHERE scan_id = %s").format(
            sql.Identifier(schema, "scans")
        ),
        (scan_id,),
    ).fetchone()
    assert row is not None
    at: datetime = row[0]
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # MariaDB: DATETIME in UTC


def diff(previous: Iterable[ColumnVerdict], current: Sequence[ColumnVerdict]) -> list[Change]:
    """Columns of ``current`` whose verdict differs from ``previous`` (columns scanned for the
    first time are reported only when personal)."""
    before = {v.key: v.entity for v in previous}
    changes = []
    for verdict in current:
        if verdict.key not in before:
            if verdict.personal:
                changes.append(Change(*verdict.key, None, verdict.entity, new=True))
        elif before[verdict.key] != verdict.entity:
            changes.append(Change(*verdict.key, before[verdict.key], verdict.entity))
    return changes
