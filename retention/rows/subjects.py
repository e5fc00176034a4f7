"""How a related row reaches its subject, in SQL: the joins up the relation graph to the
subject key (`path_sql`, one edge at a time with `edge_condition` and `class_filter`), and which
subjects a query covers (`KeyRange`, a slice of the subject keys).

Shared by the legal clock (aggregate dates), the membership and pending-row conditions, the
record walk of a batch, the exposure figures and `plan --explain`.
"""

from __future__ import annotations

from dataclasses import dataclass

from retention.engines import sql
from retention.engines.dialect import Binder, Dialect, or_postgresql
from retention.policy.bound import BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import Edge


@dataclass(frozen=True)
class PathSQL:
    """Joins from a related row up to its subject, extra conditions, and the subject key."""

    joins: sql.Composable
    conditions: tuple[sql.Composable, ...]
    key: sql.Composable


def path_sql(
    policy: BoundPolicy,
    path: tuple[Edge, ...],
    start: str,
    params: Params,
    *,
    dialect: Dialect | None = None,
) -> PathSQL:
    """Walk a chain of edges from the row aliased `start` up to the subject.

    The subject table itself is never joined: the last edge's child columns hold its key.
    """
    dialect = or_postgresql(dialect)
    joins: list[sql.Composable] = []
    conditions: list[sql.Composable] = []
    alias = start
    key: sql.Composable = sql.Identifier(start, policy.key.name)
    for depth, edge in enumerate(path):
        if edge.parent == policy.subject.qname and edge.parent_columns == (policy.key.name,):
            key = sql.Identifier(alias, edge.child_columns[0])
            if edge.class_column is not None:
                conditions.append(class_filter(edge, alias, params, dialect=dialect))
            break
        parent = f"{start}_p{depth}"
        joins.append(
            sql.SQL("JOIN {} AS {} ON {}").format(
                sql.Identifier(*edge.parent),
                sql.Identifier(parent),
                edge_condition(edge, alias, parent, params, dialect=dialect),
            )
        )
        alias = parent
        key = sql.Identifier(alias, policy.key.name)
    return PathSQL(sql.SQL(" ").join(joins), tuple(conditions), key)


def class_filter(
    edge: Edge, alias: str, params: Binder, *, dialect: Dialect | None = None
) -> sql.Composable:
    """`alias.object_class = 'CPatient'` for a polymorphic edge (the class as a parameter).
    On MariaDB the comparison follows the column's collation: a case-insensitive one (the
    default) takes 'cpatient' for 'CPatient' too."""
    dialect = or_postgresql(dialect)
    assert edge.class_column is not None and edge.class_value is not None
    return sql.SQL("{} = {}").format(
        sql.Identifier(alias, edge.class_column), dialect.text_parameter(params, edge.class_value)
    )


def edge_condition(
    edge: Edge, child: str, parent: str, params: Params, *, dialect: Dialect | None = None
) -> sql.Composable:
    """SQL condition joining a child row (alias `child`) to its parent row (alias `parent`)."""
    dialect = or_postgresql(dialect)
    parts: list[sql.Composable] = [
        sql.SQL("{} = {}").format(sql.Identifier(child, c), sql.Identifier(parent, p))
        for c, p in zip(edge.child_columns, edge.parent_columns, strict=True)
    ]
    if edge.class_column is not None:
        parts.append(class_filter(edge, child, params, dialect=dialect))
    return sql.SQL(" AND ").join(parts)


@dataclass(frozen=True)
class KeyRange:
    """Subjects whose key is at least `low` and below `high` (None: unbounded), both bound
    parameters of the query's `Params` (see retention.plan.slices)."""

    low: sql.Composable | None
    high: sql.Composable | None

    def condition(self, key: sql.Composable) -> sql.Composable:
        parts = []
        if self.low is not None:
            parts.append(sql.SQL("{} >= {}").format(key, self.low))
        if self.high is not None:
            parts.append(sql.SQL("{} < {}").format(key, self.high))
        return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")
