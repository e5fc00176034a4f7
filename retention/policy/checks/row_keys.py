"""Tables whose rows a phase must address one by one, on an engine without a row address.

PostgreSQL tells any row apart by its `ctid`; MariaDB and MySQL have no such address (InnoDB's
hidden row id cannot be read), so a row is found again only through the table's own key
(`Table.row_key`: its primary key, else a unique key of NOT NULL columns). An archive reads,
writes, verifies and deletes every row of the record that way; a column action matches the
rows of a related table it rewrites that way (retention.rows.members). A purge deletes by the
record's links and needs no key. Without one, the phase is an error.
"""

from __future__ import annotations

from collections.abc import Mapping

from retention.catalog.introspect import Catalog, Table
from retention.policy.actions import spec_of
from retention.policy.bound import BoundPhase
from retention.policy.checks.binder import Binder
from retention.policy.relations import QName, RelationGraph
from retention.policy.source import PathKey


def check_row_keys(
    binder: Binder, graph: RelationGraph | None, bound: Mapping[str, BoundPhase]
) -> None:
    """Every bound archive or column phase, when the catalogue has no row address."""
    if binder.catalog.row_address or graph is None:
        return
    for i, phase in enumerate(binder.loaded.policy.phases):
        target = bound.get(phase.name)
        if target is None:
            continue
        for path, table in _addressed(binder.catalog, i, target, graph):
            if table.qname == graph.subject or table.row_key:
                continue
            binder.error(
                path,
                f"{phase.action}: {table.label} has no primary key nor unique key of NOT NULL "
                f"columns: this engine has no row address, so the rows {_what(phase.action)} "
                "cannot be told apart one by one",
                f"add a primary key to {table.name} (or a unique key whose columns are all NOT "
                "NULL)",
            )


def _addressed(
    catalog: Catalog, i: int, phase: BoundPhase, graph: RelationGraph
) -> list[tuple[PathKey, Table]]:
    """(where to report, table) of each table whose rows the phase addresses one by one."""
    if phase.action == "archive":
        return [(("phases", i, "action"), catalog.tables[q]) for q in graph.tables]
    if spec_of(phase.action).removes_records:
        return []  # a purge deletes by the record's links
    seen: dict[QName, tuple[PathKey, Table]] = {}
    for j, item in enumerate(phase.columns):
        seen.setdefault(item.table.qname, (("phases", i, "columns", j), item.table))
    return list(seen.values())


def _what(action: str) -> str:
    return "an archive reads, verifies and deletes" if action == "archive" else f"{action} rewrites"
