"""Which rows of each table belong to a set of subjects, and which an action would change.

Membership is a nested semi-join per edge up to the subject key set, so PostgreSQL can hash
each level; a table reachable by several paths is a member through any of them.
"""

from __future__ import annotations

from psycopg import sql

from retention.plan.clock import class_filter
from retention.policy.bind import BoundPhase, BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import QName


def member_condition(
    policy: BoundPolicy,
    table: QName,
    alias: str,
    keys: sql.Composable,
    params: Params,
    depth: int = 0,
) -> sql.Composable:
    """True for rows of `table` (aliased `alias`) that belong to a subject in `keys`.

    `keys` is a query or list yielding subject keys, e.g. `SELECT k FROM due`.
    """
    if table == policy.subject.qname:
        return sql.SQL("{} IN ({})").format(sql.Identifier(alias, policy.key.name), keys)
    branches: list[sql.Composable] = []
    for edge in policy.graph.parents_of(table):
        columns = sql.SQL(", ").join(sql.Identifier(alias, c) for c in edge.child_columns)
        if edge.parent == policy.subject.qname and edge.parent_columns == (policy.key.name,):
            condition: sql.Composable = sql.SQL("({}) IN ({})").format(columns, keys)
        else:
            parent = f"m{depth}_{len(branches)}"
            condition = sql.SQL("({}) IN (SELECT {} FROM {} AS {} WHERE {})").format(
                columns,
                sql.SQL(", ").join(sql.Identifier(parent, c) for c in edge.parent_columns),
                sql.Identifier(*edge.parent),
                sql.Identifier(parent),
                member_condition(policy, edge.parent, parent, keys, params, depth + 1),
            )
        if edge.class_column is not None:
            condition = sql.SQL("({} AND {})").format(class_filter(edge, alias, params), condition)
        branches.append(condition)
    return sql.SQL("({})").format(sql.SQL(" OR ").join(branches))


def pending_condition(
    phase: BoundPhase, table: QName, alias: str, params: Params
) -> sql.Composable:
    """True for rows the phase's action would still change (already-done rows are skipped)."""
    if phase.action in ("purge", "archive"):
        return sql.SQL("true")
    parts: list[sql.Composable] = []
    for item in phase.columns:
        if item.table.qname != table:
            continue
        ref = sql.Identifier(alias, item.column.name)
        if phase.action == "erase" and item.spec.value is not None:
            parts.append(sql.SQL("{} IS DISTINCT FROM {}").format(ref, params.add(item.spec.value)))
        else:
            parts.append(sql.SQL("{} IS NOT NULL").format(ref))
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts)) if parts else sql.SQL("false")


def affected_tables(policy: BoundPolicy, phase: BoundPhase) -> tuple[QName, ...]:
    """Tables whose rows the phase changes: every related table for row actions."""
    if phase.action in ("purge", "archive"):
        return policy.graph.tables
    return phase.tables
