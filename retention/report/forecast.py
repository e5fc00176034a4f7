"""The forecast: for today and each of the next 24 month ends, the subjects each phase will act
on, as `retention plan --at <that date>` would count them (due, determinable, not held, with
work left for column actions), and those a legal hold keeps.

Computing 25 plans would read every clock 25 times. Instead, per phase:

1. the clock is read twice, at today and at the last month end, into temporary tables;
2. a subject whose due date, hold and determinability read the same at both dates is *stable*:
   its due date does not depend on the date of the plan within the window, so it is counted
   for every month end at once by bucketing its due date (the number of dates up to it);
3. the others (a due date that moves with `today`, e.g. a stay still open counts as today) are
   computed exactly, month end by month end, with the clock restricted to their keys.

Step 2 assumes that a clock reading the same at both ends of the window reads the same in
between. That holds whenever `today` enters due dates through "latest activity" dates that
only grow with it, as in the shipped policies; the tests compare every month with `plan --at`.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from retention.audit.approvals import DESTRUCTIVE, Rules, approval_state
from retention.engines import Connection, engine_of, sql
from retention.engines.clock import clock_sql
from retention.plan.clock import clock_query, holds_covering
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.policy.expr import Params
from retention.rows.members import due_keys
from retention.store.schema import holds_table

MONTHS = 24


@dataclass(frozen=True)
class Approval:
    """Whether a destructive phase may run: approvals of the current policy version."""

    required: int
    given: int
    approved: bool

    def to_json(self) -> dict[str, Any]:
        return {"required": self.required, "given": self.given, "approved": self.approved}


@dataclass(frozen=True)
class PhaseForecast:
    """One phase: `due[i]` and `held[i]` as `plan --at dates[i]` would count them."""

    policy: str
    phase: str
    action: str
    subject_table: str
    due: tuple[int, ...]
    held: tuple[int, ...]
    active_holds: int
    approval: Approval | None  # None: no approval needed (not a purge or archive)

    @property
    def label(self) -> str:
        return f"{self.policy}/{self.phase}"

    @property
    def newly_due(self) -> tuple[int, ...]:
        """Subjects becoming due during each month (index 0: due today, the backlog)."""
        return (self.due[0], *(b - a for a, b in zip(self.due, self.due[1:], strict=False)))

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "phase": self.phase,
            "action": self.action,
            "subject_table": self.subject_table,
            "due_subjects": list(self.due),
            "newly_due": list(self.newly_due),
            "held_subjects": list(self.held),
            "active_holds": self.active_holds,
            "approval": None if self.approval is None else self.approval.to_json(),
        }


@dataclass(frozen=True)
class Forecast:
    """Today and the next month ends, and each phase's figures at those dates."""

    dates: tuple[date, ...]
    phases: tuple[PhaseForecast, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "dates": [d.isoformat() for d in self.dates],
            "phases": [p.to_json() for p in self.phases],
        }


def month_ends(today: date, months: int = MONTHS) -> tuple[date, ...]:
    """The `months` month ends strictly after `today`."""
    out: list[date] = []
    year, month = today.year, today.month
    while len(out) < months:
        end = date(year, month, calendar.monthrange(year, month)[1])
        if end > today:
            out.append(end)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(out)


def compute_forecast(
    conn: Connection,
    policies: Sequence[BoundPolicy],
    today: date,
    *,
    schema: str = "retention",
    months: int = MONTHS,
    approvals: Rules | None = None,
    work_mem_mb: int = 64,
) -> Forecast:
    """The forecast of every phase of `policies`, from one consistent snapshot."""
    dates = (today, *month_ends(today, months))
    engine = engine_of(conn)
    # read-write: the temporary tables (MariaDB refuses them in a read-only transaction)
    with engine.snapshots.transaction(conn, read_only=False):
        engine.session.whole_tables(conn, work_mem_mb)
        holds = holds_table(conn, schema)
        phases = []
        for policy in policies:
            held_now = _active_holds(conn, holds, policy)
            for phase in policy.phases:
                due, held = _PhaseWindow(conn, policy, phase, dates, holds).counts()
                approval = _approval(conn, schema, policy, phase, approvals or Rules(0))
                phases.append(
                    PhaseForecast(
                        policy.name,
                        phase.name,
                        phase.action,
                        policy.subject.label,
                        due,
                        held,
                        held_now,
                        approval,
                    )
                )
    return Forecast(dates, tuple(phases))


FIRST, LAST, PENDING = (
    "retention_forecast_first",
    "retention_forecast_last",
    "retention_forecast_pending",
)


class _PhaseWindow:
    """One phase's counts at every date of the window (see the module's docstring), in the
    temporary tables FIRST and LAST (the clock at the first and last date) and PENDING."""

    def __init__(
        self,
        conn: Connection,
        policy: BoundPolicy,
        phase: BoundPhase,
        dates: tuple[date, ...],
        holds: sql.Composable | None,
    ) -> None:
        self.conn = conn
        self.policy = policy
        self.phase = phase
        self.dates = dates
        self.holds = holds
        self.dialect = engine_of(conn).dialect
        self.first, self.last, self.pending = map(self.dialect.temporary, (FIRST, LAST, PENDING))

    def counts(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        self._materialise(FIRST, self.dates[0])
        self._materialise(LAST, self.dates[-1])
        self._pending()
        due, held = self._stable()
        moving = self._moving_keys()
        if moving:
            for i, day in enumerate(self.dates):
                extra_due, extra_held = self._exact(day, moving)
                due[i] += extra_due
                held[i] += extra_held
        for name in (FIRST, LAST, PENDING):
            self.conn.execute(self.dialect.drop_temporary(name))
        return tuple(due), tuple(held)

    def _create(self, name: str, query: sql.Composable, params: dict[str, object]) -> None:
        # dropped first: MariaDB keeps a temporary table past a transaction that failed
        self.conn.execute(self.dialect.drop_temporary(name))
        self.conn.execute(self.dialect.temporary_as(name, query, unique="k"), params)

    def _materialise(self, name: str, day: date) -> None:
        clock = clock_query(
            self.policy, self.phase, day, holds_table=self.holds, dialect=clock_sql(self.conn)
        )
        self._create(
            name,
            sql.SQL("SELECT k, due, held, undeterminable FROM ({}) AS c").format(clock.query),
            clock.params,
        )

    def _pending(self) -> None:
        """Subjects with work left for this phase (all of them for row actions): the part of
        `due_keys` that does not depend on the date."""
        params = Params(prefix="f")
        every = sql.SQL("SELECT k, true AS is_due FROM {}").format(self.first)
        self._create(
            PENDING,
            due_keys(self.policy, self.phase, every, params, dialect=self.dialect),
            params.values,
        )

    def _stable(self) -> tuple[list[int], list[int]]:
        """Counts of the stable subjects: the month ends each one's due date falls before."""
        params = Params(prefix="b")
        # the number of dates up to the due date (PostgreSQL's width_bucket over them)
        bucket = sql.SQL("CASE {} ELSE {} END").format(
            sql.SQL(" ").join(
                sql.SQL("WHEN f.due < {} THEN {}").format(params.add(day), sql.Literal(i))
                for i, day in enumerate(self.dates)
            ),
            sql.Literal(len(self.dates)),
        )
        rows = self.conn.execute(
            sql.SQL(
                "SELECT {bucket} AS bucket, f.held, f.k IN (SELECT k FROM {pending}) AS pending, "
                "count(*) FROM {first} AS f JOIN {last} AS l USING (k) "
                "WHERE NOT f.undeterminable AND f.due IS NOT NULL AND NOT ({moved}) "
                "GROUP BY 1, 2, 3"
            ).format(
                bucket=bucket,
                pending=self.pending,
                first=self.first,
                last=self.last,
                moved=self._moved(),
            ),
            params.values,
        ).fetchall()
        first: dict[tuple[bool, bool], list[int]] = defaultdict(lambda: [0] * len(self.dates))
        for bucket, held, pending, count in rows:
            if bucket < len(self.dates):  # bucket: index of the first date after due
                first[(bool(held), bool(pending))][bucket] += int(count)
        due = _cumulative(first[(False, True)])
        held = [
            a + b
            for a, b in zip(
                _cumulative(first[(True, True)]), _cumulative(first[(True, False)]), strict=True
            )
        ]
        return due, held

    def _moved(self) -> sql.Composable:
        """True when a subject's due date, hold or determinability differ between FIRST (`f`)
        and LAST (`l`)."""
        return sql.SQL(" OR ").join(
            self.dialect.distinct(sql.Identifier("f", c), sql.Identifier("l", c))
            for c in ("due", "held", "undeterminable")
        )

    def _moving_keys(self) -> list[Any]:
        rows = self.conn.execute(
            sql.SQL("SELECT f.k FROM {} AS f JOIN {} AS l USING (k) WHERE {} ORDER BY f.k").format(
                self.first, self.last, self._moved()
            )
        ).fetchall()
        return [row[0] for row in rows]

    def _exact(self, day: date, keys: list[Any]) -> tuple[int, int]:
        params = Params(prefix="x")
        clock = clock_query(
            self.policy,
            self.phase,
            day,
            holds_table=self.holds,
            keys=self.dialect.key_array(params, keys, self.policy.key),
            dialect=clock_sql(self.conn),
        )
        row = self.conn.execute(
            sql.SQL(
                "SELECT count(CASE WHEN is_due AND k IN (SELECT k FROM {}) THEN 1 END), "
                "count(CASE WHEN would_be_due AND held THEN 1 END) FROM ({}) AS c"
            ).format(self.pending, clock.query),
            {**clock.params, **params.values},
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def _cumulative(values: list[int]) -> list[int]:
    out, total = [], 0
    for value in values:
        total += value
        out.append(total)
    return out


def _active_holds(conn: Connection, holds: sql.Composable | None, policy: BoundPolicy) -> int:
    if holds is None:
        return 0
    params = Params("h")
    row = conn.execute(
        sql.SQL(
            "SELECT count(DISTINCT subject_key) FROM {} WHERE {} AND released_at IS NULL"
        ).format(holds, holds_covering(policy, params, dialect=clock_sql(conn))),
        params.values,
    ).fetchone()
    return int(row[0]) if row else 0


def _approval(
    conn: Connection,
    schema: str,
    policy: BoundPolicy,
    phase: BoundPhase,
    approvals: Rules,
) -> Approval | None:
    if phase.action not in DESTRUCTIVE:
        return None
    state = approval_state(conn, schema, policy.name, policy.loaded.sha256, approvals)
    return Approval(approvals.required, len(state.counted), state.approved)
