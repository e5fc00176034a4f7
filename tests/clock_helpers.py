"""Helpers shared by tests that read the legal clock of subjects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from retention.engines import Connection, sql
from retention.engines.clock import clock_sql
from retention.plan.clock import clock_query
from retention.policy.bound import BoundPolicy
from retention.policy.check import bound_policies
from retention.store.schema import holds_table

POLICIES = Path(__file__).resolve().parent.parent / "policies"


@dataclass(frozen=True)
class Status:
    due: date | None
    is_due: bool
    held: bool
    undeterminable: bool


def policy(conn: Connection, name: str, directory: Path = POLICIES) -> BoundPolicy:
    return bound_policies(conn, directory, only=name)[0]


def statuses(
    conn: Connection,
    bound: BoundPolicy,
    at: date,
    phase: str | None = None,
    tool_schema: str = "retention",
) -> dict[Any, Status]:
    chosen = bound.phase(phase) if phase else bound.phases[-1]
    clock = clock_query(
        bound, chosen, at, holds_table=holds_table(conn, tool_schema), dialect=clock_sql(conn)
    )
    query = sql.SQL("SELECT k, due, is_due, held, undeterminable FROM ({}) AS c").format(
        clock.query
    )
    return {
        row[0]: Status(row[1], _flag(row[2]), _flag(row[3]), _flag(row[4]))
        for row in conn.execute(query, clock.params)
    }


def _flag(value: Any) -> Any:
    """A boolean as SQL gives it: PostgreSQL's bool, MariaDB's 0 or 1 (NULL stays None)."""
    return value if value is None or isinstance(value, bool) else bool(value)
