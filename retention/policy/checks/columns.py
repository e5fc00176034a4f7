"""Each phase: its due date, and the columns its action changes. A column must be of the
record, neither a key nor a link, writable through the foreign keys that reference it, and of
a type the action accepts (its spec: retention.policy.actions)."""

from __future__ import annotations

from collections.abc import Mapping

from retention.catalog.introspect import Catalog, Column, Table
from retention.policy.actions import Refusal, spec_of
from retention.policy.bound import BoundColumn, BoundDate, BoundPhase
from retention.policy.checks.binder import Binder
from retention.policy.checks.cascades import Reach, update_reach
from retention.policy.checks.dates import closure, names_in
from retention.policy.checks.transactions import accepted_tables
from retention.policy.expr import ExprType
from retention.policy.model import ColumnSpec, Phase
from retention.policy.relations import QName, RelationGraph
from retention.policy.source import PathKey


def bind_phase(
    binder: Binder,
    phase: Phase,
    index: int,
    subject: Table,
    graph: RelationGraph | None,
    names: Mapping[str, ExprType],
    dates: dict[str, BoundDate],
) -> BoundPhase | None:
    """The phase, or None (reported) when its due date or one of its columns does not bind."""
    path: PathKey = ("phases", index)
    due = binder.expression(phase.due, (*path, "due"), names, ExprType.DATE)
    columns = []
    for j, spec in enumerate(phase.column_specs()):
        bound = _target_column(binder, phase.action, spec, (*path, "columns", j), subject, graph)
        if bound is not None:
            columns.append(bound)
    accepted = accepted_tables(binder, phase, index)
    if due is None or len(columns) != len(phase.columns):
        return None
    depends = closure(names_in(due), dates)
    return BoundPhase(phase.name, phase.action, due, tuple(columns), depends, accepted)


def _target_column(
    binder: Binder,
    action: str,
    spec: ColumnSpec,
    path: PathKey,
    subject: Table,
    graph: RelationGraph | None,
) -> BoundColumn | None:
    table_name, _, column_name = spec.column.rpartition(".")
    table = subject if not table_name else binder.table(table_name, path)
    if table is None or graph is None:
        return None
    if table.qname not in graph.tables:
        binder.error(
            path,
            f"{table.name} is not related to the subject {subject.name}",
            "add a foreign key, or declare a link under related.links",
        )
        return None
    column = binder.column(table, column_name, path)
    if column is None:
        return None
    refused = _refusal(binder.catalog, graph, table, column, action, spec)
    if refused is not None:
        binder.error(path, refused[0], refused[1])
        return None
    if column.checks:
        names = ", ".join(column.checks)
        binder.warn(
            path,
            f"{table.name}.{column.name} is read by the CHECK constraint"
            f"{'s' if len(column.checks) > 1 else ''} {names}: if one refuses what {action} "
            "writes there, every batch of the phase fails (nothing changed, tried again at "
            "each run)",
            "make sure the constraint accepts those values (run the phase on a copy of the "
            "database), or relax it",
        )
    return BoundColumn(table, column, spec)


def _refusal(
    catalog: Catalog,
    graph: RelationGraph,
    table: Table,
    column: Column,
    action: str,
    spec: ColumnSpec,
) -> Refusal | None:
    """Why `action` cannot change `column` of `table`, the first reason found, or None."""
    if _is_key_or_link(catalog, graph, table, column):
        return (
            f"'{column.name}' is a key or a link of {table.name}; "
            f"{action} would break the relation",
            "act on the other columns",
        )
    refused = _update_problem(catalog, table, column, action, spec)
    if refused is not None:  # CASCADE, SET NULL, SET DEFAULT otherwise: listed with the triggers
        return refused
    if spec_of(action).writes_by_key and not table.primary_key:
        return (
            f"{table.name} has no primary key; {action} writes rows back by key",
            "add a primary key to the table",
        )
    return spec_of(action).refusal(spec, column) or _foreign_day(catalog, column, action, spec)


def _foreign_day(catalog: Catalog, column: Column, action: str, spec: ColumnSpec) -> Refusal | None:
    """An erase value that is the other engine's special date (a column does not say its
    engine, the catalogue does): PostgreSQL refuses a zero date at the first batch (rolled
    back, tried again at each run), MariaDB an infinity."""
    if action != "erase" or spec.value is None or not column.is_date:
        return None
    text = str(spec.value).strip().lower()
    if not any(text.startswith(day) for day in catalog.other_engines_dates):
        return None
    return (
        f"'{column.name}' ({column.type}) cannot hold the value {spec.value!r}: "
        f"{catalog.engine_label} has no such date",
        "give a real date (YYYY-MM-DD)" + ("" if column.not_null else ", or erase to NULL"),
    )


def _is_key_or_link(catalog: Catalog, graph: RelationGraph, table: Table, column: Column) -> bool:
    return (
        column.name in table.primary_key
        or any(column.name in fk.columns for fk in catalog.outgoing(table.qname))
        or column.name in _link_columns(graph, table.qname)
    )


def _link_columns(graph: RelationGraph, table: QName) -> set[str]:
    out: set[str] = set()
    for edge in graph.edges:
        if edge.child == table:
            out.update(edge.child_columns)
            if edge.class_column:
                out.add(edge.class_column)
    return out


def _update_problem(
    catalog: Catalog, table: Table, column: Column, action: str, spec: ColumnSpec
) -> Refusal | None:
    """Why writing `column` would fail through foreign keys: a key ON UPDATE NO ACTION or
    RESTRICT references a value that changes (here or down a chain of ON UPDATE actions), or
    a NULL reaches a NOT NULL referencing column (SET NULL, or a cascade of an erased value)."""
    reach = update_reach(catalog, {table.qname: {column.name}})
    label = f"'{column.name}' of {table.name}"
    return _restricted(catalog, reach, label, table, column, action) or _nulled(
        catalog, reach, label, action, spec
    )


def _restricted(
    catalog: Catalog, reach: Reach, label: str, table: Table, column: Column, action: str
) -> Refusal | None:
    """A key ON UPDATE NO ACTION or RESTRICT references a value that changes."""
    for fk in catalog.rooted_keys:
        reached = reach.changed.get(fk.ref_table, set()) & set(fk.ref_columns)
        if not reached or fk.on_update not in ("no action", "restrict"):
            continue
        via = (
            ""
            if fk.ref_table == table.qname and reached == {column.name}
            else f" (its value reaches {', '.join(sorted(reached))} of "
            f"{fk.ref_table[0]}.{fk.ref_table[1]} through the keys' ON UPDATE actions)"
        )
        return (
            f"{label}{via} is referenced by the foreign key {fk.name} of "
            f"{fk.table[0]}.{fk.table[1]} ON UPDATE {fk.on_update.upper()}: {action} would fail "
            "for every row it references",
            "make that key ON UPDATE CASCADE (the referencing column then follows), or act on "
            "other columns",
        )
    return None


def _nulled(
    catalog: Catalog, reach: Reach, label: str, action: str, spec: ColumnSpec
) -> Refusal | None:
    """A NULL reaches a NOT NULL referencing column (SET NULL, or a cascade of an erased
    value)."""
    erased_to_null = action == "erase" and spec.value is None
    for fk in reach.keys:
        nulls = fk.on_update == "set null" or (fk.on_update == "cascade" and erased_to_null)
        referencing = catalog.tables.get(fk.table)
        if not nulls or referencing is None:
            continue
        strict = [
            c
            for c in reach.changed.get(fk.table, set()) & set(fk.columns)
            if c in referencing.columns and referencing.columns[c].not_null
        ]
        if strict:
            return (
                f"{label}: a NULL would reach {', '.join(sorted(strict))} of "
                f"{fk.table[0]}.{fk.table[1]} (NOT NULL) through the foreign key {fk.name} ON "
                f"UPDATE {fk.on_update.upper()}: {action} would fail for every row it references",
                "erase it to a neutral value ('value: ...'), or act on other columns",
            )
    return None
