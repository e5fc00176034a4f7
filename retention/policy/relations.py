"""Which rows belong to a subject: the relation graph of a policy.

Edges go from a child table to a parent table. They come from foreign keys (followed
recursively from the subject) and from the policy's declared links: plain columns without a
foreign key and polymorphic references (`object_class` + `object_id`). The graph must be
acyclic; its reverse topological order is the order in which rows can be deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from retention.catalog.introspect import Catalog, Table

EdgeKind = Literal["foreign key", "column", "polymorphic"]
QName = tuple[str, str]


@dataclass(frozen=True)
class Edge:
    """Rows of `child` whose `child_columns` equal `parent_columns` of a `parent` row
    (and, for a polymorphic link, whose `class_column` equals `class_value`)."""

    child: QName
    parent: QName
    kind: EdgeKind
    child_columns: tuple[str, ...]
    parent_columns: tuple[str, ...]
    class_column: str | None = None
    class_value: str | None = None
    origin: str = ""


@dataclass(frozen=True)
class RelationGraph:
    """The subject table and every table whose rows can belong to a subject."""

    subject: QName
    key: str
    tables: tuple[QName, ...]  # parents before children; the subject first
    edges: tuple[Edge, ...]

    def parents_of(self, table: QName) -> list[Edge]:
        """Edges leaving `table` towards the subject."""
        return [edge for edge in self.edges if edge.child == table]

    def deletion_order(self) -> tuple[QName, ...]:
        """Children before their parents; the subject last."""
        return tuple(reversed(self.tables))

    def paths_to_subject(self, table: QName) -> Iterator[tuple[Edge, ...]]:
        """Every chain of edges from `table` up to the subject."""
        if table == self.subject:
            yield ()
            return
        for edge in self.parents_of(table):
            for rest in self.paths_to_subject(edge.parent):
                yield (edge, *rest)


class RelationError(Exception):
    """A problem building the graph; `where` is the policy path to blame."""

    def __init__(self, message: str, where: tuple[str | int, ...], hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint


@dataclass(frozen=True)
class DeclaredEdge:
    """A link from the policy, already resolved to tables (done by the binder)."""

    edge: Edge
    where: tuple[str | int, ...]


def exclusive(one: Edge, other: Edge) -> bool:
    """No row can follow both links to two owners: polymorphic on the same class column, for
    different classes (compared without case: MariaDB's usual collations ignore it); or the
    same link in two spellings of its class ('CPatient' and 'cpatient' mapped to one table:
    a row following both names the same parent row, an outside review found the warning false)."""
    if one.class_column is None or one.class_column != other.class_column:
        return False
    if (one.class_value or "").casefold() != (other.class_value or "").casefold():
        return True
    return (one.parent, one.parent_columns, one.child_columns) == (
        other.parent,
        other.parent_columns,
        other.child_columns,
    )


def two_owner_links(
    graph: RelationGraph, unique: Callable[[QName, tuple[str, ...]], bool] | None = None
) -> list[tuple[Edge, Edge]]:
    """Every ordered pair of links of one table towards the subject that a row can follow
    both: such a row can belong to two records (retention.rows.shared). With `unique` (whether
    columns of a table name one row at most), a link to parent columns that are no key pairs
    with itself: one row names several parent rows, which may be of several records (MariaDB
    accepts a foreign key to any indexed column)."""
    pairs = []
    for table in graph.tables:
        links = graph.parents_of(table)
        pairs += [(a, b) for a in links for b in links if a is not b and not exclusive(a, b)]
        if unique is not None:
            pairs += [(a, a) for a in links if not unique(a.parent, a.parent_columns)]
    return pairs


def build_graph(
    catalog: Catalog,
    subject: Table,
    key: str,
    declared: list[DeclaredEdge],
    excluded: set[QName],
    follow_foreign_keys: bool = True,
) -> RelationGraph:
    """Follow foreign keys and declared links from the subject until nothing new is found."""
    members: set[QName] = {subject.qname}
    edges: list[Edge] = []
    changed = True
    while changed:
        changed = False
        for edge in _candidate_edges(catalog, members, declared, follow_foreign_keys):
            if edge in edges or edge.child in excluded:
                continue
            if edge.child == edge.parent:
                continue  # self-references are checked by the binder
            edges.append(edge)
            if edge.child not in members:
                members.add(edge.child)
            changed = True
    order = _topological(subject.qname, members, edges)
    return RelationGraph(subject.qname, key, order, tuple(edges))


def _candidate_edges(
    catalog: Catalog, members: set[QName], declared: list[DeclaredEdge], follow: bool
) -> Iterator[Edge]:
    if follow:
        for fk in catalog.foreign_keys:
            if fk.ref_table in members:
                yield Edge(
                    fk.table,
                    fk.ref_table,
                    "foreign key",
                    fk.columns,
                    fk.ref_columns,
                    origin=f"foreign key {fk.name}",
                )
    for item in declared:
        if item.edge.parent in members:
            yield item.edge


def _topological(subject: QName, members: set[QName], edges: list[Edge]) -> tuple[QName, ...]:
    """Parents before children (Kahn's algorithm); a cycle raises :class:`RelationError`."""
    waiting = {table: {e.parent for e in edges if e.child == table} for table in members}
    order: list[QName] = []
    ready = sorted(t for t, parents in waiting.items() if not parents)
    while ready:
        table = ready.pop(0)
        order.append(table)
        for child, parents in waiting.items():
            if table in parents:
                parents.discard(table)
                if not parents and child not in order and child not in ready:
                    ready.append(child)
        ready.sort()
    if len(order) != len(members):
        stuck = sorted(".".join(t) for t in members if t not in order)
        raise RelationError(
            f"the related tables form a cycle: {', '.join(stuck)}",
            ("related",),
            "list one of these tables under related.exclude, or remove the link that loops",
        )
    if order[0] != subject:
        order.remove(subject)
        order.insert(0, subject)
    return tuple(order)


def is_link(
    graph: RelationGraph,
    child: QName,
    parent: QName,
    columns: Sequence[str],
    ref_columns: Sequence[str],
) -> bool:
    """The foreign key is one of the record's links between two different tables (its rows
    are then archived and deleted before the parent's). A polymorphic link is not: the key
    would also act on the rows of the link's other classes."""
    return child != parent and any(
        e.kind != "polymorphic"
        and e.child == child
        and e.parent == parent
        and tuple(e.child_columns) == tuple(columns)
        and tuple(e.parent_columns) == tuple(ref_columns)
        for e in graph.edges
    )
