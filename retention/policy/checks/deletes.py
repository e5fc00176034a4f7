"""Deleting a record (a purge, an archive) against the foreign keys that are not its links:
those that would delete or change rows no archive holds, and those that would make every
batch fail (ON DELETE NO ACTION or RESTRICT from a table left out of the record)."""

from __future__ import annotations

from retention.catalog.introspect import ForeignKey
from retention.policy.actions import spec_of
from retention.policy.checks.binder import Binder
from retention.policy.relations import QName, RelationGraph, is_link

CHANGING_DELETES = frozenset({"cascade", "set null", "set default"})


def check_archive_cascades(binder: Binder, graph: RelationGraph | None) -> None:
    """An archive writes the rows of the record, then deletes them, children first along the
    record's links: a foreign key that is not one of those links and carries the delete
    further (CASCADE) or changes the referencing rows (SET NULL, SET DEFAULT) would delete or
    change rows no archive holds (a table left out of the record, another subject through a
    self-reference, or a table of the record deleted out of order). The batch re-checks the
    live foreign keys too (partitions, migrations): retention.archive.codec.check_tables."""
    archives = [i for i, p in enumerate(binder.loaded.policy.phases) if p.action == "archive"]
    if graph is None or not archives:
        return
    members = set(graph.tables)
    for fk in binder.catalog.rooted_keys:  # keys on or to partitions count for their tables
        if fk.ref_table not in members or fk.on_delete not in CHANGING_DELETES:
            continue
        if is_link(graph, fk.table, fk.ref_table, fk.columns, fk.ref_columns):
            continue
        binder.error(
            ("phases", archives[0], "action"),
            f"archive: {fk.table[0]}.{fk.table[1]} references {fk.ref_table[1]} through "
            f"{fk.name} ON DELETE {fk.on_delete.upper()}, which is not a link of the record: "
            "archiving would delete or change rows that no archive holds",
            "make that foreign key ON DELETE RESTRICT or NO ACTION (a batch it would break "
            "then fails and keeps everything)"
            if fk.table in members
            else "bring its table into the record (its rows are then archived with the "
            "record's), or drop that foreign key (ON DELETE RESTRICT or NO ACTION would make "
            "every batch deleting a referenced row fail)",
        )


def check_blocking_keys(binder: Binder, graph: RelationGraph | None) -> None:
    """A table left out of the record (`related.exclude`, or not reached with
    `follow_foreign_keys: false`) whose foreign key references a table of the record ON DELETE
    NO ACTION or RESTRICT: a purge or an archive deleting a referenced row fails (SQLSTATE
    23503), so every batch holding such a subject fails and keeps everything. (The keys that
    cascade or set NULL are check_archive_cascades' and retention.policy.checks.hooks'
    concern.)"""
    phases = binder.loaded.policy.phases
    destructive = [i for i, p in enumerate(phases) if spec_of(p.action).removes_records]
    if graph is None or not destructive:
        return
    related = binder.loaded.policy.related
    excluded = {t.qname for name in related.exclude if (t := binder.catalog.find(name))}
    members = set(graph.tables)
    i = destructive[0]
    action = phases[i].action
    for fk in binder.catalog.rooted_keys:
        if fk.ref_table not in members or fk.on_delete in CHANGING_DELETES:
            continue
        if fk.table in members and not _deleted_out_of_order(graph, fk):
            continue
        binder.error(
            ("phases", i, "action"),
            f"{action}: {fk.table[0]}.{fk.table[1]} references {fk.ref_table[1]} through the "
            f"foreign key {fk.name} (ON DELETE {fk.on_delete.upper()}), but "
            f"{_why_blocked(fk, excluded, members)}: every batch deleting a "
            "referenced row would fail (SQLSTATE 23503) and keep everything",
            f"if its rows belong to the record, {_unblock(fk, excluded, graph)}{_or_else(action)}",
        )


def _why_blocked(fk: ForeignKey, excluded: set[QName], members: set[QName]) -> str:
    if fk.table in excluded:
        return f"{fk.table[1]} is excluded from the record (related.exclude)"
    if fk.table in members:
        return (
            "foreign keys are not followed (follow_foreign_keys: false) and no link says "
            f"so, so {fk.ref_table[1]}'s rows are deleted before {fk.table[1]}'s"
        )
    return (
        "foreign keys are not followed (follow_foreign_keys: false) and no link brings "
        f"{fk.table[1]} into the record"
    )


def _unblock(fk: ForeignKey, excluded: set[QName], graph: RelationGraph) -> str:
    if fk.table in excluded:
        return "remove it from related.exclude"
    if len(fk.columns) == 1:
        target = "" if fk.ref_table == graph.subject else f", references: {fk.ref_table[1]}"
        return (
            f"declare the link {{table: {fk.table[1]}, column: {fk.columns[0]}{target}}} "
            "or set follow_foreign_keys: true"
        )
    return "set follow_foreign_keys: true"


def _or_else(action: str) -> str:
    if action == "archive":
        return "; or drop that foreign key"
    return (
        "; or declare the key ON DELETE SET NULL (the reference is cleared) or CASCADE "
        "(its rows go with the record's)"
    )


def _deleted_out_of_order(graph: RelationGraph, fk: ForeignKey) -> bool:
    """A foreign key between two tables of the record that is none of its links (not followed)
    and whose referenced table the deletion order empties first."""
    if fk.table == fk.ref_table or any(
        (e.child, e.parent, e.child_columns) == (fk.table, fk.ref_table, fk.columns)
        for e in graph.edges
    ):
        return False
    order = graph.deletion_order()
    return order.index(fk.ref_table) < order.index(fk.table)
