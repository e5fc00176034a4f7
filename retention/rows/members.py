"""Which rows of each table belong to a set of subjects, and which an action would change.

Membership is a nested semi-join per edge up to the subject key set, so PostgreSQL can hash
each level; a table reachable by several paths is a member through any of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from retention.engines import sql
from retention.engines.dialect import Dialect, Membership, or_postgresql
from retention.policy.actions import ROW_ACTIONS
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import QName
from retention.rows.subjects import KeyRange, path_sql
from retention.rows.values import pending


def members(
    policy: BoundPolicy,
    table: QName,
    alias: str,
    keys: sql.Composable,
    params: Params,
    *,
    dialect: Dialect | None = None,
) -> Membership:
    """The rows of `table` (aliased `alias`) that belong to a subject in `keys`, a
    `dialect.key_list` (e.g. `SELECT unnest(%(p)s::int[])`).

    The rows are found path by path with joins that start from the subjects (`parent.key IN
    (keys)`, then each link's index), and matched on the table's row address (its primary
    key; on PostgreSQL `tableoid` and `ctid` without one: a ctid is unique within one partition
    only): an `OR` of `IN` subqueries would make PostgreSQL scan the whole table for every
    batch. How the statement is restricted to them (a condition, a join) is the engine's.
    """
    dialect = or_postgresql(dialect)
    if table == policy.subject.qname:
        return dialect.key_membership(alias, policy.key.name, keys)
    ids = dialect.row_ids(policy.table(table))
    branches = []
    for path in policy.graph.paths_to_subject(table):
        walk = path_sql(policy, path, "t", params, dialect=dialect)
        conditions = [sql.SQL("{} IN ({})").format(walk.key, keys), *walk.conditions]
        branches.append(
            sql.SQL("SELECT {} FROM {} AS t {} WHERE {}").format(
                sql.SQL(", ").join(dialect.row_ref("t", c) for c in ids),
                sql.Identifier(*table),
                walk.joins,
                sql.SQL(" AND ").join(conditions),
            )
        )
    return dialect.membership(alias, ids, branches)


def paths(policy: BoundPolicy, table: QName) -> int:
    """How many relations `count_members` joins for `table`: one per path to the subject."""
    return sum(1 for _ in policy.graph.paths_to_subject(table))


def count_members(
    policy: BoundPolicy,
    phase: BoundPhase,
    table: QName,
    due: sql.Composable | Sequence[sql.Composable],
    params: Params,
    *,
    dialect: Dialect | None = None,
) -> sql.Composable:
    """`SELECT count(*)` of the rows of `table` the phase would change for the subjects in the
    relation `due` (column `k`). Joins, not `IN` under `OR`: with hundreds of thousands of due
    subjects a hashed subplan would not fit in memory and PostgreSQL would rescan it per row.
    Rows are told apart by their address (PostgreSQL `tableoid`, `ctid`). `due` may be one
    relation per path to the subject (see `paths`): where a statement cannot read one
    temporary table twice (MySQL), each path joins a copy of its own."""
    dialect = or_postgresql(dialect)
    address = dialect.row_address(policy.table(table))
    walks = list(policy.graph.paths_to_subject(table))
    dues = [due] * len(walks) if isinstance(due, sql.Composable) else list(due)
    branches = []
    for path, joined in zip(walks, dues, strict=True):
        walk = path_sql(policy, path, "t", params, dialect=dialect)
        conditions = [
            pending_condition(phase, table, "t", params, dialect=dialect),
            *walk.conditions,
        ]
        branches.append(
            sql.SQL("SELECT {} FROM {} AS t {} JOIN {} AS d ON d.k = {} WHERE {}").format(
                sql.SQL(", ").join(dialect.row_ref("t", c) for c in address),
                sql.Identifier(*table),
                walk.joins,
                joined,
                walk.key,
                sql.SQL(" AND ").join(conditions),
            )
        )
    # One path: each row reaches at most one subject. Several: a row may be reached twice.
    union = sql.SQL(" UNION ").join(branches)
    return sql.SQL("SELECT count(*) FROM ({}) AS x").format(union)


def pending_condition(
    phase: BoundPhase, table: QName, alias: str, params: Params, *, dialect: Dialect | None = None
) -> sql.Composable:
    """True for rows the phase's action would still change (already-done rows are skipped)."""
    dialect = or_postgresql(dialect)
    if phase.action in ROW_ACTIONS:
        return sql.SQL("true")
    parts = [
        pending(
            phase.action, item, sql.Identifier(alias, item.column.name), params, dialect=dialect
        )
        for item in phase.columns
        if item.table.qname == table
    ]
    return sql.SQL("({})").format(sql.SQL(" OR ").join(parts)) if parts else sql.SQL("false")


def due_keys(
    policy: BoundPolicy,
    phase: BoundPhase,
    clock: sql.Composable,
    params: Params,
    *,
    subject_flag: sql.Composable | None = None,
    within: KeyRange | None = None,
    dialect: Dialect | None = None,
) -> sql.Composable:
    """`SELECT k` of the subjects a phase acts on: due by the clock and, for column actions,
    with at least one row still to change (a subject already minimised is not due again).
    `subject_flag`: a column of `clock` holding `subject_pending` of the phase, evaluated by
    the clock on the subject's row, so the subject table is not read a second time. `within`:
    the clock covers only that slice of keys, so the related tables are read for it only."""
    query = sql.SQL("SELECT k FROM ({}) AS c WHERE is_due").format(clock)
    if phase.action in ROW_ACTIONS:
        return query
    condition = still_to_change(
        policy, phase, params, subject_flag=subject_flag, within=within, dialect=dialect
    )
    return sql.SQL("{} AND {}").format(query, condition)


def still_to_change(
    policy: BoundPolicy,
    phase: BoundPhase,
    params: Params,
    *,
    subject_flag: sql.Composable | None = None,
    within: KeyRange | None = None,
    dialect: Dialect | None = None,
) -> sql.Composable:
    """The condition of `due_keys` on a due subject `k` of a column phase: at least one of
    its rows still to change (`false`, or a condition in parentheses)."""
    dialect = or_postgresql(dialect)
    skip = policy.subject.qname if subject_flag is not None else None
    pending_keys = _pending_keys(policy, phase, params, skip, within, dialect=dialect)
    found = [] if subject_flag is None else [subject_flag]
    if pending_keys is not None:
        found.append(sql.SQL("k IN ({})").format(pending_keys))
    if not found:
        return sql.SQL("false")
    return sql.SQL("({})").format(sql.SQL(" OR ").join(found))


def subject_pending(
    policy: BoundPolicy,
    phase: BoundPhase,
    alias: str,
    params: Params,
    *,
    dialect: Dialect | None = None,
) -> sql.Composable | None:
    """True for a subject row (aliased `alias`) on which the column phase still has work, over
    the phase's columns of the subject table itself; None when it has none there."""
    dialect = or_postgresql(dialect)
    if phase.action in ROW_ACTIONS or policy.subject.qname not in phase.tables:
        return None
    return pending_condition(phase, policy.subject.qname, alias, params, dialect=dialect)


def _pending_keys(
    policy: BoundPolicy,
    phase: BoundPhase,
    params: Params,
    skip: QName | None = None,
    within: KeyRange | None = None,
    *,
    dialect: Dialect,
) -> sql.Composable | None:
    """Subject keys with a row of the phase still to change, table by table (but `skip`),
    among those `within` that slice."""
    branches = []
    for table in phase.tables:
        if table == skip:
            continue
        for path in policy.graph.paths_to_subject(table):
            walk = path_sql(policy, path, "t", params, dialect=dialect)
            conditions = [
                pending_condition(phase, table, "t", params, dialect=dialect),
                *walk.conditions,
            ]
            if within is not None:
                conditions.append(within.condition(walk.key))
            branches.append(
                sql.SQL("SELECT {} FROM {} AS t {} WHERE {}").format(
                    walk.key, sql.Identifier(*table), walk.joins, sql.SQL(" AND ").join(conditions)
                )
            )
    return sql.SQL(" UNION ").join(branches) if branches else None


def affected_tables(policy: BoundPolicy, phase: BoundPhase) -> tuple[QName, ...]:
    """Tables whose rows the phase changes: every related table for row actions."""
    if phase.action in ROW_ACTIONS:
        return policy.graph.tables
    return phase.tables
