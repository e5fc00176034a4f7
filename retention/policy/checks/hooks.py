"""Triggers and rules a phase's statements set off: they run code this tool does not see.

On DELETE, one may delete or change rows an archive does not hold (an error until the phase
accepts it by name), or copy the row into a log that keeps it in the live base (a warning for
a purge); on UPDATE, a history trigger keeps the old value a minimisation removes (a warning).
A purge's deletes also reach the tables its foreign keys cascade to (DELETE) or set to NULL or
a default (UPDATE); a column action that changes a partition key moves rows (DELETE and
INSERT). Accepted names that match nothing are reported too. Rules cannot be accepted on an
archive: PostgreSQL refuses `COPY (DELETE ... RETURNING)` on a table with a DELETE rule.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from retention.catalog.introspect import Catalog, Hook
from retention.policy.actions import spec_of
from retention.policy.bound import BoundPhase
from retention.policy.checks.binder import Binder
from retention.policy.checks.cascades import phase_writes
from retention.policy.model import Phase
from retention.policy.relations import QName, RelationGraph

_COVER = " (if it writes old values to a table, cover that table with a policy)"


def check_hooks(
    binder: Binder, graph: RelationGraph | None, bound: Mapping[str, BoundPhase]
) -> None:
    """Every bound phase's hooks, in the order of the phases."""
    for i, phase in enumerate(binder.loaded.policy.phases):
        target = bound.get(phase.name)
        if target is not None:
            _check_phase(binder, i, phase, target, graph)


def _check_phase(
    binder: Binder, i: int, phase: Phase, target: BoundPhase, graph: RelationGraph | None
) -> None:
    hooks = _hooks_of(binder.catalog, phase.action, target, graph)
    accepted = {
        id(h) for j, name in enumerate(phase.triggers) for h in _accepted(binder, i, j, name, hooks)
    }
    for event, hook in hooks:
        if not hook.sees_old_rows and phase.action != "archive":
            continue  # sees no row: it cannot keep what the phase removes
        if hook.kind == "rule" and phase.action == "archive" and event == "delete":
            binder.error(
                ("phases", i, "action"),
                f"archive: {hook.label()} has the DELETE rule {hook.name}: PostgreSQL "
                "cannot delete and return the rows of a table with a DELETE rule",
                "drop the rule, or purge instead of archiving",
            )
            continue
        if id(hook) not in accepted:
            _report_hook(binder, i, phase.action, event, hook)


def _report_hook(binder: Binder, i: int, action: str, event: str, hook: Hook) -> None:
    what = f"{hook.label()} has the {event.upper()} {hook.kind} " + (
        f"{hook.name} ({hook.function})" if hook.function else hook.name
    )
    hint = _accept_hint(binder.catalog, hook)
    where = ("phases", i, "action")
    if action == "archive":
        runs = "for every row archived" if hook.per_row else "for each DELETE statement"
        binder.error(
            where,
            f"archive: {what}; it runs {runs} and may delete or change rows that no archive holds",
            hint,
        )
    else:
        binder.warn(where, _what_it_keeps(action, event, what), hint + _COVER)


def _accept_hint(catalog: Catalog, hook: Hook) -> str:
    """How to accept the hook: schema.table.name when another schema has a table of that
    name; quoted for YAML."""
    same_name = [t for t in catalog.tables if t[1] == hook.on[1]]
    parts = (*hook.on, hook.name) if len(same_name) > 1 else (hook.on[1], hook.name)
    return (
        "review what it does, then accept it in this phase: 'triggers: "
        f"[{json.dumps('.'.join(parts), ensure_ascii=False)}]'"
    )


def _what_it_keeps(action: str, event: str, what: str) -> str:
    if action == "purge":
        return (
            f"purge: {what}; if it copies the rows it sees somewhere, that copy stays in the "
            "live base"
        )
    if event != "update":
        return (
            f"{action}: {what}; the phase changes a partition key, so rows move to another "
            "partition (deleted, then inserted) and it runs; if it logs old values, they stay "
            "in the live base"
        )
    return f"{action}: {what}; if it logs old values, they stay in the live base"


def _hooks_of(
    catalog: Catalog, action: str, phase: BoundPhase, graph: RelationGraph | None
) -> list[tuple[str, Hook]]:
    """(event, hook) of every trigger and rule the phase's statements set off."""
    writes = phase_writes(catalog, graph, phase)
    if spec_of(action).removes_records:
        found = [
            ("delete", h)
            for h in catalog.hooks
            if h.table in writes.deleted and "delete" in h.events
        ]
        return found + _updates(catalog, writes.updated)
    written = writes.updated
    moved = {t for t, cs in written.items() if cs & catalog.partition_keys.get(t, frozenset())}
    return _updates(catalog, written) + [
        (event, h)
        for h in catalog.hooks
        if h.table in moved and h.kind == "trigger"
        for event in ("delete", "insert")
        if event in h.events
    ]


def _updates(catalog: Catalog, changed: Mapping[QName, set[str]]) -> list[tuple[str, Hook]]:
    """The UPDATE hooks of tables whose `changed` columns are written (an `UPDATE OF` trigger
    on other columns does not fire)."""
    return [
        ("update", h)
        for h in catalog.hooks
        if h.table in changed
        and "update" in h.events
        and (h.columns is None or h.columns & changed[h.table])
    ]


def _designates(accepted: str, hook: Hook, via_table: bool = True) -> bool:
    """`name`, `table.name` or `schema.table.name` designates `hook`: the table it is declared
    on, or (`via_table`) the table the policy names, for a partition's or child's trigger.
    Compared whole, so names may contain dots."""
    forms = {hook.name}
    for schema, table in (hook.on, hook.table) if via_table else (hook.on,):
        forms |= {f"{table}.{hook.name}", f"{schema}.{table}.{hook.name}"}
    return accepted in forms


def designated(name: str, hooks: Sequence[Hook]) -> list[Hook]:
    """The hooks an accepted `name` designates: by the table they are declared on first (so
    `sejours.audit` is the parent's trigger, not also its children's of the same name), by
    the table the policy names otherwise."""
    declared = [h for h in hooks if _designates(name, h, via_table=False)]
    if "." in name and declared:
        return declared
    return [h for h in hooks if _designates(name, h)]


def _accepted(
    binder: Binder, i: int, j: int, name: str, hooks: list[tuple[str, Hook]]
) -> list[Hook]:
    """The hooks the accepted `name` designates, if it can be used: on one table, or a bare
    name whose triggers all call one function (an audit trigger set on every table)."""
    found = designated(name, [h for _, h in hooks])
    tables = {h.on for h in found}
    if not found:
        binder.warn(
            ("phases", i, "triggers", j),
            f"'{name}' is no trigger or rule this phase sets off",
            "remove it from 'triggers', or check its name",
        )
        return []
    functions = {h.function for h in found}
    if len(tables) > 1 and ("." in name or len(functions) > 1 or None in functions):
        binder.warn(
            ("phases", i, "triggers", j),
            f"'{name}' names triggers of {len(tables)} tables "
            f"({', '.join(sorted(f'{s}.{t}' for s, t in tables))}) that do not all call one "
            "function: not accepted",
            "name each one as table.trigger",
        )
        return []
    return found
