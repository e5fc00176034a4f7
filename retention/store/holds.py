"""Legal holds: add, release, list. A held subject is excluded from every phase of its policy;
once released, its clock is extended by the time it was held (computed by the clock)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from retention.errors import RetentionError


class HoldError(RetentionError):
    exit_code = 2


@dataclass(frozen=True)
class Hold:
    hold_id: int
    policy: str
    subject_key: str
    reason: str
    held_since: datetime
    held_by: str
    released_at: datetime | None
    released_by: str | None


def add_hold(
    conn: psycopg.Connection[Any], schema: str, policy: str, subject: str, reason: str
) -> Hold:
    """A new hold (one active hold per policy and subject)."""
    if active(conn, schema, policy, subject):
        raise HoldError(
            "this subject is already on hold for this policy",
            hint="'retention hold list' shows the active holds",
        )
    row = conn.execute(
        sql.SQL(
            "INSERT INTO {} (policy, subject_key, reason) VALUES (%s, %s, %s) RETURNING *"
        ).format(sql.Identifier(schema, "holds")),
        (policy, subject, reason),
    ).fetchone()
    assert row is not None
    return Hold(*row)


def release_hold(conn: psycopg.Connection[Any], schema: str, policy: str, subject: str) -> Hold:
    row = conn.execute(
        sql.SQL(
            "UPDATE {} SET released_at = now(), released_by = current_user WHERE policy = %s "
            "AND subject_key = %s AND released_at IS NULL RETURNING *"
        ).format(sql.Identifier(schema, "holds")),
        (policy, subject),
    ).fetchone()
    if row is None:
        raise HoldError("no active hold for this subject and policy")
    return Hold(*row)


def active(conn: psycopg.Connection[Any], schema: str, policy: str, subject: str) -> bool:
    row = conn.execute(
        sql.SQL(
            "SELECT 1 FROM {} WHERE policy = %s AND subject_key = %s AND released_at IS NULL"
        ).format(sql.Identifier(schema, "holds")),
        (policy, subject),
    ).fetchone()
    return row is not None


def list_holds(
    conn: psycopg.Connection[Any],
    schema: str,
    policy: str | None = None,
    include_released: bool = False,
) -> list[Hold]:
    conditions = [sql.SQL("true")]
    params: list[Any] = []
    if policy:
        conditions.append(sql.SQL("policy = %s"))
        params.append(policy)
    if not include_released:
        conditions.append(sql.SQL("released_at IS NULL"))
    rows = conn.execute(
        sql.SQL("SELECT * FROM {} WHERE {} ORDER BY hold_id").format(
            sql.Identifier(schema, "holds"), sql.SQL(" AND ").join(conditions)
        ),
        params,
    ).fetchall()
    return [Hold(*row) for row in rows]
