"""System-versioned tables (MariaDB `WITH SYSTEM VERSIONING`) that a phase changes: an error.

A DELETE or an UPDATE of such a table keeps the old row in its history: any account that may
read the table reads it back with `SELECT ... FOR SYSTEM_TIME ALL`, in the live base, with no
expiry. A purge there would delete nothing a breach could not take, a minimisation would
remove nothing, and the audit trail would record both as done. Nor can the tool finish the job
itself: MariaDB purges history by time for every row of the table at once (`DELETE HISTORY
FROM t BEFORE SYSTEM_TIME ...`, no WHERE clause), never one person's rows, and a column left
`WITHOUT SYSTEM VERSIONING` still sits in the history rows written before. So it is refused,
with no way to accept it in a policy (unlike a table without transactions, whose risk is a
batch cut short, this one is certain): the DBA removes the versioning or the table's place in
the phase.
"""

from __future__ import annotations

from collections.abc import Mapping

from retention.policy.bound import BoundPhase
from retention.policy.checks.binder import Binder
from retention.policy.checks.cascades import phase_writes
from retention.policy.relations import RelationGraph


def check_versioning(
    binder: Binder, graph: RelationGraph | None, bound: Mapping[str, BoundPhase]
) -> None:
    """Every bound phase: each system-versioned table it deletes from or updates."""
    for i, phase in enumerate(binder.loaded.policy.phases):
        target = bound.get(phase.name)
        if target is None:
            continue
        writes = phase_writes(binder.catalog, graph, target)
        for qname in sorted(writes.tables):
            table = binder.catalog.tables[qname]
            if not table.system_versioned:
                continue
            verb = "deletes" if qname in writes.deleted else "rewrites"
            name = binder.catalog.written(table.name)
            binder.error(
                ("phases", i, "action"),
                f"{phase.action}: {table.label} is system-versioned: the phase {verb} rows "
                "there, and the old rows stay in its history, readable by anyone who may read "
                "the table (SELECT ... FOR SYSTEM_TIME ALL), with no expiry",
                f"remove its versioning (ALTER TABLE {name} DROP SYSTEM VERSIONING deletes "
                "its history); history can only be purged for every row at once (DELETE "
                f"HISTORY FROM {name} BEFORE SYSTEM_TIME ...), never one person's",
            )
