"""Compute a plan: for each policy and phase, what is due at a date. Writes nothing.

All phases are computed in one REPEATABLE READ READ ONLY transaction, so the figures come from
one snapshot. Each phase is one statement: the clock of every subject is materialised once and
the rows of every affected table are counted against the due subjects.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from retention.audit.approvals import DESTRUCTIVE, approval_state
from retention.plan.clock import clock_query
from retention.plan.model import PhasePlan, Plan, PolicyPlan
from retention.plan.rows import affected_tables, count_members, due_keys
from retention.policy.bind import BoundPhase, BoundPolicy
from retention.policy.expr import Params
from retention.store.schema import holds_table


def compute_plan(
    conn: psycopg.Connection[Any],
    policies: list[BoundPolicy],
    at: date,
    *,
    schema: str = "retention",
    work_mem_mb: int = 64,
    rows: bool = True,
    required_approvals: int | None = None,
) -> Plan:
    """The plan of `policies` as of `at`, from one consistent snapshot. Without `rows`, only
    subjects are counted (what `run` needs to check its limits; counting every related row
    of a large purge costs as much as finding them)."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute("SELECT set_config('work_mem', %s, true)", (f"{work_mem_mb}MB",))
        holds = holds_table(conn, schema)
        plans = tuple(_policy_plan(conn, policy, at, holds, rows) for policy in policies)
        if required_approvals is not None:
            plans = tuple(_with_approval(conn, p, schema, required_approvals) for p in plans)
    return Plan(at, plans)


def _with_approval(
    conn: psycopg.Connection[Any], plan: PolicyPlan, schema: str, required: int
) -> PolicyPlan:
    if not any(phase.action in DESTRUCTIVE for phase in plan.phases):
        return plan
    state = approval_state(conn, schema, plan.name, plan.sha256, required)
    return replace(plan, approval=state)


def _policy_plan(
    conn: psycopg.Connection[Any],
    policy: BoundPolicy,
    at: date,
    holds: sql.Composable | None,
    rows: bool,
) -> PolicyPlan:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*policy.subject.qname))
    ).fetchone()
    phases = tuple(_phase_plan(conn, policy, phase, at, holds, rows) for phase in policy.phases)
    return PolicyPlan(
        policy.name, policy.loaded.sha256, policy.subject.label, int(row[0]) if row else 0, phases
    )


def _phase_plan(
    conn: psycopg.Connection[Any],
    policy: BoundPolicy,
    phase: BoundPhase,
    at: date,
    holds: sql.Composable | None,
    with_rows: bool = True,
) -> PhasePlan:
    clock = clock_query(policy, phase, at, holds_table=holds)
    params = Params(prefix="r")
    tables = affected_tables(policy, phase) if with_rows else ()
    counts = [
        sql.SQL("({})").format(count_members(policy, phase, table, sql.Identifier("due"), params))
        for table in tables
    ]
    counts += [
        sql.SQL("(SELECT count(*) FROM clock WHERE {})").format(sql.Identifier(f"why_{i}"))
        for i in range(len(clock.reasons))
    ]
    query = sql.SQL(
        "WITH clock AS MATERIALIZED ({clock}), "
        "due AS MATERIALIZED ({due}) "
        "SELECT (SELECT count(*) FROM due), "
        "(SELECT count(*) FROM clock WHERE would_be_due AND held), "
        "(SELECT count(*) FROM clock WHERE undeterminable), {counts}"
    ).format(
        clock=clock.query,
        counts=sql.SQL(", ").join(counts),
        due=due_keys(policy, phase, sql.SQL("SELECT * FROM clock"), params),
    )
    row = conn.execute(query, {**clock.params, **params.values}).fetchone()
    assert row is not None
    table_counts, reason_counts = row[3 : 3 + len(tables)], row[3 + len(tables) :]
    rows = {f"{s}.{t}": int(n) for (s, t), n in zip(tables, table_counts, strict=True)}
    reasons = {r: int(n) for r, n in zip(clock.reasons, reason_counts, strict=True) if n}
    return PhasePlan(phase.name, phase.action, int(row[0]), int(row[1]), int(row[2]), rows, reasons)
