"""What a policy's record holds: its relation graph as a tree, with the rows each link reaches.

`retention check --explain` prints it so that a reviewer sees, before approving a purge, every
table it reaches, through which link (foreign key, plain column, polymorphic class) and how
many rows: a class forgotten or a link to the wrong table shows as a branch missing or too big.
A table reached by several paths appears under each parent, with the rows of that path.
"""

from __future__ import annotations

from dataclasses import dataclass

from retention.engines import Connection, engine_of, sql
from retention.policy.bound import BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import Edge, QName
from retention.rows.subjects import path_sql


@dataclass(frozen=True)
class Branch:
    """A table of the record reached through `path` (edges from it up to the subject)."""

    table: QName
    path: tuple[Edge, ...]
    rows: int
    children: tuple[Branch, ...]

    @property
    def edge(self) -> Edge | None:
        """The link from this table to its parent in the tree (None for the subject)."""
        return self.path[0] if self.path else None


def explain_graph(conn: Connection, policy: BoundPolicy) -> Branch:
    """The tree of the policy's relation graph with row counts, read in one snapshot."""
    with engine_of(conn).snapshots.transaction(conn, read_only=True):
        return _branch(conn, policy, policy.subject.qname, ())


def _branch(conn: Connection, policy: BoundPolicy, table: QName, path: tuple[Edge, ...]) -> Branch:
    edges = sorted(
        (e for e in policy.graph.edges if e.parent == table),
        key=lambda e: (e.child, e.class_value or "", e.child_columns),
    )
    children = tuple(_branch(conn, policy, e.child, (e, *path)) for e in edges)
    return Branch(table, path, _count(conn, policy, table, path), children)


def _count(conn: Connection, policy: BoundPolicy, table: QName, path: tuple[Edge, ...]) -> int:
    """Rows of `table` that reach an existing subject through `path` (each join goes to a
    parent's unique key, so a row is counted once)."""
    if not path:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table))
        row = conn.execute(query).fetchone()
        return int(row[0]) if row else 0
    params = Params("x")
    walk = path_sql(policy, path, "t", params, dialect=engine_of(conn).dialect)
    subjects = sql.SQL("SELECT {} FROM {}").format(
        sql.Identifier(policy.key.name), sql.Identifier(*policy.subject.qname)
    )
    conditions = [sql.SQL("{} IN ({})").format(walk.key, subjects), *walk.conditions]
    query = sql.SQL("SELECT count(*) FROM {} AS t {} WHERE {}").format(
        sql.Identifier(*table), walk.joins, sql.SQL(" AND ").join(conditions)
    )
    row = conn.execute(query, params.values).fetchone()
    return int(row[0]) if row else 0


def link_label(edge: Edge) -> str:
    """How a child row names its parent: 'patient_id (foreign key sejours_patient_id_fkey)',
    'patient_id (no foreign key)', "object_class = 'CSejour', object_id (polymorphic)"."""
    columns = ", ".join(edge.child_columns)
    if edge.kind == "foreign key":
        return f"{columns} ({edge.origin})"
    if edge.class_column is not None:
        kind = "polymorphic, no foreign key"
        return f"{edge.class_column} = '{edge.class_value}', {columns} ({kind})"
    return f"{columns} (no foreign key)"


def render_tree(root: Branch) -> list[str]:
    """The tree as text lines: table, link, rows."""
    lines = [f"{_label(root.table)}  {root.rows:,} row(s)"]
    _render_children(root, "", lines)
    return lines


def _render_children(branch: Branch, indent: str, lines: list[str]) -> None:
    for i, child in enumerate(branch.children):
        last = i == len(branch.children) - 1
        assert child.edge is not None
        lines.append(
            f"{indent}{'└── ' if last else '├── '}{_label(child.table)}  {child.rows:,} row(s)"
            f"  via {link_label(child.edge)}"
        )
        _render_children(child, indent + ("    " if last else "│   "), lines)


def _label(table: QName) -> str:
    return f"{table[0]}.{table[1]}"
