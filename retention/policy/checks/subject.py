"""The subject: its table's key, the foreign keys by which it references itself, and the
names of the record's tables."""

from __future__ import annotations

from retention.catalog.introspect import Column, Table
from retention.policy.checks.binder import Binder
from retention.policy.relations import RelationGraph


def subject_key(binder: Binder, subject: Table) -> Column | None:
    """The subject's key column; it must be a unique key of the subject's table."""
    key = binder.column(subject, binder.loaded.policy.subject.key, ("subject", "key"))
    if key is not None and not subject.is_unique([key.name]):
        binder.error(
            ("subject", "key"),
            f"column '{key.name}' is not a unique key of {subject.name}",
            "use the primary key, or add a unique index",
        )
    return key


def check_self_references(binder: Binder, subject: Table) -> None:
    """A purge could not delete a subject another one references: the key must give way. An
    archive must not change another subject's row: with one, a batch the key would break
    fails and keeps everything (retention.policy.checks.deletes), for its purge phases too."""
    actions = {p.action for p in binder.loaded.policy.phases}
    if "purge" not in actions or "archive" in actions:
        return
    for fk in binder.catalog.referencing(subject.qname):
        if fk.table == subject.qname and fk.on_delete not in ("set null", "cascade"):
            binder.error(
                ("subject", "table"),
                f"{subject.name} references itself through "
                f"{fk.name}: purging a row would break that reference",
                "declare the foreign key ON DELETE SET NULL",
            )


def check_names(binder: Binder, graph: RelationGraph | None) -> None:
    """Names with a `%` cannot be used: psycopg reads a `%` in any query run with parameters
    as a placeholder, even inside a quoted identifier."""
    if graph is None:
        return
    for qname in graph.tables:
        table = binder.catalog.tables[qname]
        odd = [n for n in (*qname, *table.columns) if "%" in n]
        if odd:
            binder.error(
                ("subject", "table"),
                f"{table.name} is in the policy's relation graph and has a name containing "
                f"'%' ({', '.join(repr(n) for n in odd)}): not supported",
                "rename it, or leave the table out of the graph (related: exclude)",
            )
