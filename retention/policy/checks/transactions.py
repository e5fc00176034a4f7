"""Tables without transactions (MariaDB/MySQL MyISAM, Aria, MEMORY: `Table.transactional`
False) that a phase changes: a ROLLBACK keeps what a batch already changed there, so a batch
cut short (a crash, kill -9, a lost connection, a statement that fails) leaves those rows
deleted or rewritten while the rest of the batch, its audit entry included, is rolled back.

Every such table a phase changes (the record's tables for a purge or an archive, the tables
foreign keys cascade to; a column action's tables and what their ON UPDATE actions reach) is
an error until the phase accepts it by name (`accept_non_transactional`), once reviewed. An
accepted table's batches are still not atomic: each writes its intent before it acts, and the
next run completes a batch cut short (retention.engine.journal, retention.engine.intents). A
run checks again, live, before a phase's first batch (retention.engine.gates): a table
converted since the policies were bound is refused there, and so is an archive phase on such
a table (an interrupted archive batch's file is not completed by an intent).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from retention.catalog.introspect import Catalog, Table
from retention.policy.bound import BoundPhase
from retention.policy.checks.binder import Binder
from retention.policy.checks.cascades import phase_writes
from retention.policy.model import Phase
from retention.policy.relations import QName, RelationGraph

KEY = "accept_non_transactional"


def accepted_tables(binder: Binder, phase: Phase, index: int) -> frozenset[QName]:
    """The tables a phase accepts changing without transactions; an unknown name is an error."""
    found: set[QName] = set()
    for j, name in enumerate(phase.accept_non_transactional):
        table = binder.table(name, ("phases", index, KEY, j))
        if table is not None:
            found.add(table.qname)
    return frozenset(found)


def check_transactions(
    binder: Binder, graph: RelationGraph | None, bound: Mapping[str, BoundPhase]
) -> None:
    """Every bound phase: the tables without transactions it changes and does not accept (an
    error), and the accepted names that are no such table of the phase (a warning)."""
    for i, phase in enumerate(binder.loaded.policy.phases):
        target = bound.get(phase.name)
        if target is None:
            continue
        changed = phase_writes(binder.catalog, graph, target).tables
        refused = [
            binder.catalog.tables[q]
            for q in sorted(changed)
            if not binder.catalog.tables[q].transactional
            and q not in target.accepted_non_transactional
        ]
        if refused:
            binder.error(
                ("phases", i, "action"),
                not_atomic(phase.action, [_label(t) for t in refused]),
                _hint(binder.catalog, refused, phase),
            )
        elif phase.action == "archive":
            _check_archive(binder, i, changed)
        _check_accepted(binder, i, phase, changed)


def _check_archive(binder: Binder, i: int, changed: set[QName]) -> None:
    """An archive cannot accept tables without transactions: its batch writes a file that an
    intent does not complete (the run refuses such a phase too)."""
    accepted = [binder.catalog.tables[q] for q in sorted(changed)]
    unatomic = [t for t in accepted if not t.transactional]
    if unatomic:
        binder.error(
            ("phases", i, "action"),
            f"archive: {', '.join(_label(t) for t in unatomic)} "
            f"{'has' if len(unatomic) == 1 else 'have'} no transactions: an archive batch cut "
            "short there could not be completed by the next run (its file is not journaled)",
            f"convert {'it' if len(unatomic) == 1 else 'them'} to a transactional engine "
            f"(ALTER TABLE {binder.catalog.written(unatomic[0].name)} ENGINE=InnoDB)",
        )


def unaccepted(
    phase: BoundPhase, changed: set[QName], transactional: Mapping[QName, bool]
) -> list[QName]:
    """Of the tables a phase changes, those without transactions now (`transactional`: read
    live; a table missing from it counts as without) that the phase does not accept."""
    return sorted(
        q
        for q in changed
        if not transactional.get(q, False) and q not in phase.accepted_non_transactional
    )


def not_atomic(action: str, tables: list[str]) -> str:
    """What is wrong, for `check` and for the run's refusal."""
    have = "has" if len(tables) == 1 else "have"
    return (
        f"{action}: {', '.join(tables)} {have} no transactions: a batch cut short (crash, "
        "kill, lost connection, failed statement) keeps what it already changed there while "
        "the rest of it, its audit entry included, is rolled back, so its batches are not "
        "atomic"
    )


def _label(table: Table) -> str:
    return f"{table.label} ({table.storage or 'unknown storage engine'})"


def _hint(catalog: Catalog, tables: list[Table], phase: Phase) -> str:
    names = [*phase.accept_non_transactional, *(_name(catalog, t) for t in tables)]
    listed = ", ".join(json.dumps(n, ensure_ascii=False) for n in names)
    first = tables[0]
    return (
        f"convert {'it' if len(tables) == 1 else 'them'} to a transactional engine "
        f"(ALTER TABLE {catalog.written(first.name)} ENGINE=InnoDB), or, once that risk is "
        "reviewed and "
        f"accepted, list {'it' if len(tables) == 1 else 'them'} in this phase: "
        f"'{KEY}: [{listed}]'"
    )


def _name(catalog: Catalog, table: Table) -> str:
    """The table's name as a policy writes it: bare, unless another schema has one so named."""
    same = [t for t in catalog.tables if t[1] == table.name]
    if len(same) > 1:
        return catalog.policy_name(table.schema, table.name)
    return catalog.policy_name(table.name)


def _check_accepted(binder: Binder, i: int, phase: Phase, changed: set[QName]) -> None:
    for j, name in enumerate(phase.accept_non_transactional):
        table = binder.catalog.find(name)
        if table is None:
            continue  # reported when the phase was bound
        where = ("phases", i, KEY, j)
        if table.transactional:
            storage = f" ({table.storage})" if table.storage else ""  # None: every table has
            binder.warn(
                where,
                f"{table.label} has transactions{storage}: there is nothing to accept",
                f"remove it from '{KEY}'",
            )
        elif table.qname not in changed:
            binder.warn(
                where,
                f"phase '{phase.name}' ({phase.action}) does not change {table.label}",
                f"remove it from '{KEY}', or check its name",
            )
