"""Expiry groups: subjects are grouped by the month (or year) their legal retention ends.

A group's segments are destroyed once the last day of the group has passed (every subject in
it is then past its `retain_until`). A subject whose `retain_until` cannot be computed goes to
the group `undated`, which never expires by itself: `archive list` shows it for review.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

from retention.engines import Connection, sql
from retention.engines.clock import clock_sql
from retention.plan.clock import clock_query
from retention.policy.bound import BoundPhase, BoundPolicy

Granularity = Literal["month", "year"]
UNDATED = "undated"


def label(day: date | None, granularity: Granularity) -> str:
    """The group of a subject whose retention ends on `day`."""
    if day is None:
        return UNDATED
    return f"{day:%Y}" if granularity == "year" else f"{day:%Y-%m}"


def expires_on(group: str) -> date | None:
    """A group's last day, the last day it is kept: it may be destroyed from the next day
    (None: never by itself)."""
    if group == UNDATED:
        return None
    year = int(group[:4])
    if len(group) == 4:
        return date(year, 12, 31)
    month = int(group[5:7])
    return date(year, month, calendar.monthrange(year, month)[1])


def is_group(text: str) -> bool:
    if text == UNDATED:
        return True
    try:
        expires_on(text)
    except ValueError:
        return False
    return len(text) in (4, 7) and text[:4].isdigit()


def retain_until(
    conn: Connection,
    policy: BoundPolicy,
    at: date,
    holds: sql.Composable | None,
    keys: Sequence[Any],
) -> dict[Any, date | None]:
    """Each subject's end of retention (hold extensions included), None when undeterminable."""
    phase = BoundPhase("retain_until", "archive", policy.retain_until, (), policy.retain_depends)
    clock = clock_query(
        policy,
        phase,
        at,
        holds_table=holds,
        keys=sql.Placeholder("batch_keys"),
        dialect=clock_sql(conn),
    )
    query = sql.SQL("SELECT k, CASE WHEN undeterminable THEN NULL ELSE due END FROM ({}) AS c")
    rows = conn.execute(query.format(clock.query), {**clock.params, "batch_keys": list(keys)})
    found: dict[Any, date | None] = {row[0]: row[1] for row in rows}
    return {key: found.get(key) for key in keys}
