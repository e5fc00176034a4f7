"""The record's links: the links the policy declares (a column, or a polymorphic pair of
class and id columns), the tables it excludes, and the relation graph they give with the
foreign keys (retention.policy.relations)."""

from __future__ import annotations

from collections.abc import Iterator

from retention.catalog.introspect import Column, Table
from retention.policy.checks.binder import Binder
from retention.policy.checks.subject import check_self_references
from retention.policy.model import Link, Polymorphic
from retention.policy.relations import (
    DeclaredEdge,
    Edge,
    QName,
    RelationError,
    RelationGraph,
    build_graph,
    two_owner_links,
)
from retention.policy.source import PathKey


def relation_graph(binder: Binder, subject: Table, key: str) -> RelationGraph | None:
    """The graph of the record's tables, or None (reported) when it cannot be built."""
    related = binder.loaded.policy.related
    declared = [
        edge
        for i, link in enumerate(related.links)
        for edge in _link_edges(binder, link, ("related", "links", i), subject)
    ]
    excluded = _excluded(binder)
    check_self_references(binder, subject)
    try:
        return build_graph(
            binder.catalog, subject, key, declared, excluded, related.follow_foreign_keys
        )
    except RelationError as exc:
        binder.error(exc.where, exc.message, exc.hint)
        return None


def check_two_owner_links(binder: Binder, graph: RelationGraph | None) -> None:
    """A table with two links towards the subject that one row can follow both: the row can
    belong to two records. A run keeps every subject whose record shares such a row with
    another record (retention.rows.shared); said here, with the links, so that a link that
    does not make a row part of the record (a creator, an author) can be left out."""
    if graph is None:
        return

    tables: dict[QName, list[Edge]] = {}
    unique = binder.catalog.tables
    for one, other in two_owner_links(graph, unique=lambda t, c: unique[t].is_unique(c)):
        found = tables.setdefault(one.child, [])
        found += [e for e in (one, other) if e not in found]
    for table, links in tables.items():
        through = " and ".join(_link_text(e) for e in links)
        if len(links) == 1:  # a link to parent columns that are no key
            through += ", which names every parent row holding its value"
        binder.warn(
            ("subject",),
            f"a row of {table[0]}.{table[1]} can belong to two records, through {through}: "
            "a run keeps (and counts) every subject whose record shares such a row with "
            "another subject's, and acts on neither",
            "if one of these links does not make the row part of the record (a creator, an "
            "author, a referring doctor), leave out the table it goes through "
            "(related: {exclude: [...]}) or declare the record's links yourself "
            "(related: {follow_foreign_keys: false, links: [...]}); where both are right (an "
            "encounter's patient and its visit's), rows that disagree are data to correct",
        )


def check_join_columns(binder: Binder, graph: RelationGraph | None) -> None:
    """A column that joins the record's rows (the subject's key, a link's columns, a table's
    primary key, which batches find rows by) typed by a PostgreSQL domain over an enum: such a
    domain has no `=` (the enums' operator is polymorphic, and a domain does not match
    anyenum), so every batch would fail; said here, before any run."""
    if graph is None:
        return
    written = binder.catalog.written
    joined: dict[QName, set[str]] = {graph.subject: {graph.key}}
    for edge in graph.edges:
        joined.setdefault(edge.child, set()).update(edge.child_columns)
        joined.setdefault(edge.parent, set()).update(edge.parent_columns)
    for name in graph.tables:
        table = binder.catalog.tables[name]
        for column_name in sorted(joined.get(name, set()) | set(table.primary_key)):
            column = table.columns.get(column_name)
            if column is None or not column.is_enum_domain:
                continue
            binder.error(
                ("subject",),
                f"{name[0]}.{name[1]}.{column.name} joins the record's rows and is of the domain "
                f"{column.type} over the enum {column.base_type}: PostgreSQL has no '=' for a "
                "domain over an enum, so every batch would fail",
                f"type the column with the enum itself (ALTER TABLE {written(*name)} ALTER "
                f"COLUMN {written(column.name)} TYPE {column.base_type}), or leave its table "
                "out of the record (related: {exclude: [...]})",
            )


def _link_text(edge: Edge) -> str:
    columns = ", ".join(edge.child_columns)
    return f"{columns} -> {edge.parent[1]} ({edge.origin or edge.kind})"


def _excluded(binder: Binder) -> set[QName]:
    excluded: set[QName] = set()
    for i, name in enumerate(binder.loaded.policy.related.exclude):
        table = binder.table(name, ("related", "exclude", i))
        if table is not None:
            excluded.add(table.qname)
    return excluded


def _link_edges(
    binder: Binder, link: Link, path: PathKey, subject: Table
) -> Iterator[DeclaredEdge]:
    child = binder.table(link.table, (*path, "table"))
    if child is None:
        return
    if link.column is not None:
        edge = _column_edge(binder, link, link.column, path, child, subject)
        if edge is not None:
            yield edge
        return
    assert link.polymorphic is not None  # guaranteed by the model
    yield from _polymorphic_edges(binder, link.polymorphic, path, child)


def _column_edge(
    binder: Binder, link: Link, name: str, path: PathKey, child: Table, subject: Table
) -> DeclaredEdge | None:
    parent = (
        subject if link.references is None else binder.table(link.references, (*path, "references"))
    )
    column = binder.column(child, name, (*path, "column"))
    if parent is None or column is None:
        return None
    if len(parent.primary_key) != 1:
        binder.error(path, f"{parent.name} has no single-column primary key to link to")
        return None
    _check_key_types(binder, column, parent.columns[parent.primary_key[0]], path)
    edge = Edge(
        child.qname,
        parent.qname,
        "column",
        (column.name,),
        parent.primary_key,
        origin=f"declared link {child.name}.{column.name}",
    )
    return DeclaredEdge(edge, path)


def _polymorphic_edges(
    binder: Binder, poly: Polymorphic, path: PathKey, child: Table
) -> Iterator[DeclaredEdge]:
    ppath = (*path, "polymorphic")
    class_col = binder.column(child, poly.class_column, (*ppath, "class_column"))
    id_col = binder.column(child, poly.id_column, (*ppath, "id_column"))
    if class_col is not None and not class_col.is_text:
        binder.error(
            (*ppath, "class_column"),
            f"'{class_col.name}' is {class_col.type}; a polymorphic class column holds text",
        )
    for cls, table_name in poly.classes.items():
        parent = binder.table(table_name, (*ppath, "classes", cls))
        if parent is None or class_col is None or id_col is None:
            continue
        if len(parent.primary_key) != 1:
            binder.error(
                (*ppath, "classes", cls),
                f"{parent.name} has no single-column primary key to link to",
            )
            continue
        _check_key_types(binder, id_col, parent.columns[parent.primary_key[0]], ppath)
        edge = Edge(
            child.qname,
            parent.qname,
            "polymorphic",
            (id_col.name,),
            parent.primary_key,
            class_col.name,
            cls,
            origin=f"polymorphic link {child.name}.{class_col.name}",
        )
        yield DeclaredEdge(edge, path)


def _check_key_types(binder: Binder, column: Column, key: Column, path: PathKey) -> None:
    if column.is_number != key.is_number or column.is_text != key.is_text:
        binder.error(path, f"'{column.name}' ({column.type}) cannot hold keys of type {key.type}")
