"""Tables of the record that PostgreSQL does not show as they are: row-level security hiding
rows from this account, and parents of old-style inheritance (their rows include the child
tables' rows).

Row-level security: such a table would be read, counted, archived and minimised in part, the
rows its policies hide from the role being invisible to every statement of the tool, while a
foreign key ON DELETE CASCADE deletes them with their parent all the same (the cascade runs as
the table's owner). An outside review saw an archive delete four confidential notes that no
archive file held and no audit entry counted. The tool's sessions run with `row_security =
off`, so such a statement fails rather than see part of a table; here it is an error before
anything runs, naming the tables and what lifts it.
"""

from __future__ import annotations

from retention.policy.actions import spec_of
from retention.policy.checks.binder import Binder
from retention.policy.relations import RelationGraph


def check_row_security(binder: Binder, graph: RelationGraph | None) -> None:
    """Every table of the record on which row-level security applies to this account."""
    if graph is None:
        return
    hidden = [t for t in graph.tables if binder.catalog.tables[t].row_security]
    if not hidden:
        return
    names = ", ".join(f"{s}.{n}" for s, n in hidden)
    binder.error(
        ("subject",),
        f"row-level security hides rows of {names} from this account: the tool would read, "
        "count, archive or minimise part of the record, and a cascade would delete the rows "
        "it cannot see",
        "run as a role that bypasses it (ALTER ROLE <role> BYPASSRLS, by a superuser), or as "
        "the tables' owner when they do not FORCE ROW LEVEL SECURITY",
    )


def check_inheritance(binder: Binder, graph: RelationGraph | None) -> None:
    """A phase that deletes records, over a table that another table of the record inherits
    from (old-style inheritance, not partitions): the parent's rows include the child's, so
    the child's rows are reached twice (through the parent, and through the child's own link)
    and deleted by the parent's DELETE before the child's: every batch holding such a row
    rolls back (an outside review: skipped on every run, the run still reporting success)."""
    phases = binder.loaded.policy.phases
    removing = [i for i, p in enumerate(phases) if spec_of(p.action).removes_records]
    if graph is None or not removing:
        return
    for qname in graph.tables:
        table = binder.catalog.tables[qname]
        members = {f"{s}.{n}" for s, n in graph.tables}
        both = [c for c in table.inheritors if c in members]
        if not both:
            continue
        binder.error(
            ("phases", removing[0], "action"),
            f"{phases[removing[0]].action}: {', '.join(both)} inherit(s) from {table.label}, "
            "and both are in the record: the parent's rows include the child's, so the "
            "parent's DELETE deletes rows the batch reads again through the child's own link, "
            "and every batch holding such a row would fail",
            "keep the parent alone in the record (its rows include the child's: "
            "related: {exclude: [...]} for the child), or make the child tables partitions",
        )
