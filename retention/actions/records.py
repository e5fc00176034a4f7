"""The rows of a batch's records, found once per batch, top-down, by the values of their links.

A record is the subject row and every row reachable from it through the policy's relation graph
(foreign keys, plain-column links, polymorphic links). Rather than walking from the subject to
each table again (four or five joins per table, every table reached anew), the batch walks the
graph once, parents first: for every table that other tables point to, it reads the values those
links compare with (e.g. `sejours.sejour_id`) for the rows reached so far. Each child table is
then reached with one indexed `= ANY(array)` condition per link, exactly as the hand-written SQL
a DBA would write. The values are bound as array parameters, so PostgreSQL plans index scans from
the arrays' real sizes.

A row is a member when one of its links matches a member row of the parent, which by induction
over the graph (parents before children) is the same set as "reachable through some path".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from retention.plan.clock import class_filter
from retention.policy.bind import BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import Edge, QName


@dataclass
class Records:
    """Link values of the member rows of each parent table (column name -> values, aligned)."""

    policy: BoundPolicy
    keys: Sequence[Any]
    values: dict[QName, dict[str, list[Any]]] = field(default_factory=dict)

    def condition(self, edge: Edge, alias: str, params: Params) -> sql.Composable | None:
        """Rows of `edge.child` (aliased `alias`) linked to a member row of `edge.parent` through
        `edge`; None when the parent has no member row (nothing can match)."""
        parent = self.values.get(edge.parent, {})
        columns = [parent.get(c, []) for c in edge.parent_columns]
        table = self.policy.table(edge.child)
        if len(edge.child_columns) == 1:
            distinct = sorted({v for v in columns[0] if v is not None}, key=_order)
            if not distinct:
                return None
            column = edge.child_columns[0]
            found: sql.Composable = sql.SQL("{} = ANY({}::{}[])").format(
                sql.Identifier(alias, column),
                params.add(distinct),
                sql.SQL(table.columns[column].type),
            )
        else:
            rows = sorted(
                {r for r in zip(*columns, strict=True) if None not in r},
                key=lambda r: tuple(map(_order, r)),
            )
            if not rows:
                return None
            found = sql.SQL("({}) IN (SELECT * FROM unnest({}))").format(
                sql.SQL(", ").join(sql.Identifier(alias, c) for c in edge.child_columns),
                sql.SQL(", ").join(
                    sql.SQL("{}::{}[]").format(
                        params.add([r[i] for r in rows]), sql.SQL(table.columns[c].type)
                    )
                    for i, c in enumerate(edge.child_columns)
                ),
            )
        if edge.class_column is None:
            return found
        return sql.SQL("{} AND {}").format(class_filter(edge, alias, params), found)


def _order(value: Any) -> Any:
    """Sort key for link values (sorted arrays make index scans walk the index in order)."""
    return (type(value).__name__, value)


def collect(conn: psycopg.Connection[Any], policy: BoundPolicy, keys: Sequence[Any]) -> Records:
    """Read, parents first, the link values of every member row that another table points to."""
    graph = policy.graph
    needed: dict[QName, list[str]] = {}
    for edge in graph.edges:
        wanted = needed.setdefault(edge.parent, [])
        wanted += [c for c in edge.parent_columns if c not in wanted]
    records = Records(policy, keys)
    for table in graph.tables:
        columns = needed.get(table)
        if not columns:
            continue
        if table == graph.subject and columns == [graph.key]:
            records.values[table] = {graph.key: list(keys)}
            continue
        records.values[table] = _read(conn, records, table, columns)
    return records


def _read(
    conn: psycopg.Connection[Any], records: Records, table: QName, columns: list[str]
) -> dict[str, list[Any]]:
    policy = records.policy
    params = Params(prefix="v")
    names = sql.SQL(", ").join(sql.Identifier("t", c) for c in columns)
    branches: list[sql.Composable] = []
    if table == policy.subject.qname:
        branches.append(
            sql.SQL("SELECT {} FROM {} AS t WHERE {} = ANY({}::{}[])").format(
                names,
                sql.Identifier(*table),
                sql.Identifier("t", policy.key.name),
                params.add(list(records.keys)),
                sql.SQL(policy.key.type),
            )
        )
    else:
        for edge in policy.graph.parents_of(table):
            condition = records.condition(edge, "t", params)
            if condition is not None:
                branches.append(
                    sql.SQL("SELECT {} FROM {} AS t WHERE {}").format(
                        names, sql.Identifier(*table), condition
                    )
                )
    values: dict[str, list[Any]] = {c: [] for c in columns}
    if not branches:
        return values
    for row in conn.execute(sql.SQL(" UNION ").join(branches), params.values):
        for column, value in zip(columns, row, strict=True):
            values[column].append(value)
    return values


def delete(conn: psycopg.Connection[Any], records: Records) -> dict[str, int]:
    """Delete the records, children first; rows deleted per table ("schema.table")."""
    policy = records.policy
    rows: dict[str, int] = {}
    for table in policy.graph.deletion_order():
        label = f"{table[0]}.{table[1]}"
        if table == policy.subject.qname:
            query = sql.SQL("DELETE FROM {} WHERE {} = ANY(%s::{}[])").format(
                sql.Identifier(*table), sql.Identifier(policy.key.name), sql.SQL(policy.key.type)
            )
            rows[label] = conn.execute(query, (list(records.keys),)).rowcount
            continue
        rows[label] = 0
        for edge in policy.graph.parents_of(table):
            params = Params(prefix="d")
            condition = records.condition(edge, "r", params)
            if condition is None:
                continue
            query = sql.SQL("DELETE FROM {} AS r WHERE {}").format(
                sql.Identifier(*table), condition
            )
            rows[label] += conn.execute(query, params.values).rowcount
    return rows
