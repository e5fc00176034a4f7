"""Approval of destructive phases (R1112-7: destruction is decided by the director after the
opinion of the medical-information physician).

An approval is an audit entry naming who approved, in which role, the exact content of a policy
file (its SHA-256). Purge and archive phases run only when enough distinct people approved the
current content; editing the file changes its SHA-256 and so withdraws every approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from retention.audit.trail import AuditTrail, Entry, Stored
from retention.policy.actions import SPECS

# the actions that need approval: they remove whole records
DESTRUCTIVE = tuple(n for n, s in SPECS.items() if s.removes_records)


@dataclass(frozen=True)
class Approval:
    by: str
    role: str
    at: datetime


@dataclass(frozen=True)
class ApprovalState:
    """Approvals of one policy version against the number required."""

    policy: str
    sha256: str
    approvals: tuple[Approval, ...]
    required: int

    @property
    def approved(self) -> bool:
        return self.required == 0 or len({a.by for a in self.approvals}) >= self.required

    def describe(self) -> str:
        if self.required == 0:
            return "approval not required"
        people = ", ".join(f"{a.by} ({a.role})" for a in self.approvals) or "nobody"
        count = len({a.by for a in self.approvals})
        state = "approved" if self.approved else "NOT approved"
        return f"{state}: {count}/{self.required} approval(s) of this version, by {people}"


def record_approval(
    conn: psycopg.Connection[Any], trail: AuditTrail, policy: str, sha256: str, by: str, role: str
) -> Stored:
    return trail.record(
        conn,
        Entry(
            event="approval",
            outcome="approved",
            policy=policy,
            policy_sha256=sha256,
            detail={"by": by, "role": role},
        ),
    )


def approval_state(
    conn: psycopg.Connection[Any], schema: str, policy: str, sha256: str, required: int
) -> ApprovalState:
    exists = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{sql.Identifier(schema).as_string(None)}.audit",)
    ).fetchone()
    rows: list[Any] = []
    if exists and exists[0]:
        rows = conn.execute(
            sql.SQL(
                "SELECT detail->>'by', detail->>'role', recorded_at FROM {} "
                "WHERE event = 'approval' "
                "AND policy = %s AND policy_sha256 = %s ORDER BY seq"
            ).format(sql.Identifier(schema, "audit")),
            (policy, sha256),
        ).fetchall()
    return ApprovalState(policy, sha256, tuple(Approval(*row) for row in rows), required)
