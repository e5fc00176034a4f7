"""Clock dates read from a column the server rewrites on every update of its row (MariaDB/MySQL
`ON UPDATE current_timestamp()`: `Column.on_update`).

Such a column holds the day the row last changed, whoever changed it, not the day of the event
the legal clock counts from (a stay, a consultation). When the tool itself updates that table
(a minimisation, or a purge whose foreign keys set columns to NULL), each row it rewrites moves
to the day of the update: the date a due date is computed from jumps forward, and what is due
after it (the purge of the record, 20 years on) is postponed by the tool's own work, every
time, beyond the legal period. That is an error for the policy whose phase updates the table.
Otherwise it is a warning: the application's and maintenance scripts' updates move it too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from retention.catalog.introspect import Column, Table
from retention.policy.bound import BoundDate, BoundPhase
from retention.policy.checks.binder import Binder
from retention.policy.checks.cascades import phase_writes
from retention.policy.expr.nodes import Name
from retention.policy.relations import RelationGraph


def check_on_update(
    binder: Binder,
    subject: Table,
    graph: RelationGraph | None,
    dates: Mapping[str, BoundDate],
    bound: Mapping[str, BoundPhase],
) -> None:
    """Every date reading a column with `ON UPDATE`: an error when a phase of the policy
    updates its table, else a warning."""
    updates = {
        name: phase_writes(binder.catalog, graph, phase).updated for name, phase in bound.items()
    }
    for name, date in dates.items():
        for table, column in date_columns(subject, date):
            if column.on_update is None:
                continue
            what = (
                f"date '{name}' reads {table.name}.{column.name}, which the server sets to the "
                f"time of every update of its row (ON UPDATE {column.on_update})"
            )
            phases = [p for p, updated in updates.items() if table.qname in updated]
            if phases:
                binder.error(
                    ("dates", name),
                    f"{what}; phase {', '.join(repr(p) for p in phases)} updates {table.name}, so "
                    "each row it rewrites moves this date to the day of the update and postpones "
                    "what is due after it",
                    "compute the date from a column the application writes for the event itself "
                    "(a stay's or a consultation's date)",
                )
            else:
                binder.warn(
                    ("dates", name),
                    f"{what}: an update by the application or a maintenance script moves this "
                    "date and postpones what is due after it",
                    "prefer a column the application writes for the event itself (a stay's or a "
                    "consultation's date)",
                )


def date_columns(subject: Table, date: BoundDate) -> Iterator[tuple[Table, Column]]:
    """The columns a date reads: a column of the subject, or those an aggregate's value and
    filter name (of the table it runs over, or of a table it joins)."""
    if date.kind == "column" and date.column is not None:
        yield subject, date.column
        return
    if date.over is None:
        return
    tables = {date.over.name: date.over, **{j.table.name: j.table for j in date.joins}}
    seen: set[tuple[str, str]] = set()
    for expr in (date.value, date.where):
        for node in expr.walk() if expr is not None else ():
            if not isinstance(node, Name):
                continue
            table = tables.get(node.table or date.over.name)
            column = table.columns.get(node.name) if table is not None else None
            if table is not None and column is not None and (table.name, node.name) not in seen:
                seen.add((table.name, node.name))
                yield table, column
