"""Bind a policy to the live catalogue: resolve every table, column, link and name, check
types against actions, and report every problem with its file position.

The result, :class:`BoundPolicy`, is what plans and actions are computed from. Nothing here
executes SQL; the catalogue was read once beforehand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from retention.catalog.introspect import Catalog, Column, ForeignKey, Hook, Table
from retention.errors import Problem
from retention.policy.actions import spec_of
from retention.policy.expr import Expr, ExprError, ExprType, parse, typecheck
from retention.policy.expr.nodes import Name
from retention.policy.load import LoadedPolicy
from retention.policy.model import AggregateDate, ColumnDate, ColumnSpec, Link, Phase
from retention.policy.relations import (
    DeclaredEdge,
    Edge,
    QName,
    RelationError,
    RelationGraph,
    build_graph,
)
from retention.policy.source import PathKey
from retention.store.ledger import Ledger

RETAIN_UNTIL = "retain_until"


@dataclass(frozen=True)
class Join:
    """A many-to-one join from an aggregate's table to a table holding the value: the
    aggregate's `columns` equal the joined table's `ref_columns`, through a foreign key or a
    declared column link (`origin` says which)."""

    table: Table
    columns: tuple[str, ...]
    ref_columns: tuple[str, ...]
    origin: str

    @property
    def enforced(self) -> bool:
        """A foreign key: a value that is not NULL always finds its row (a declared link's
        may find none, its row deleted)."""
        return self.origin.startswith("foreign key ")


@dataclass(frozen=True)
class BoundDate:
    """A named date, resolved."""

    name: str
    kind: Literal["column", "aggregate", "expression"]
    column: Column | None = None
    format: str | None = None
    if_missing: str = "undeterminable"
    function: str = "max"
    over: Table | None = None
    joins: tuple[Join, ...] = ()
    value: Expr | None = None  # aggregated value, or the derived expression
    where: Expr | None = None
    depends: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BoundColumn:
    """A column an action applies to."""

    table: Table
    column: Column
    spec: ColumnSpec
    ledger: Ledger | None = None  # scrub: texts already left clean (retention.store.ledger)


@dataclass(frozen=True)
class BoundPhase:
    """A phase, resolved: due expression and target columns."""

    name: str
    action: str
    due: Expr
    columns: tuple[BoundColumn, ...]
    depends: frozenset[str]

    @property
    def needs_pseudonym_key(self) -> bool:
        return spec_of(self.action).needs_pseudonym_key(c.spec for c in self.columns)

    @property
    def tables(self) -> tuple[QName, ...]:
        """Tables the column action writes to, in first-seen order."""
        seen: dict[QName, None] = {}
        for item in self.columns:
            seen.setdefault(item.table.qname, None)
        return tuple(seen)


@dataclass(frozen=True)
class BoundPolicy:
    """A policy whose every name is known to exist in the database."""

    loaded: LoadedPolicy
    catalog: Catalog
    subject: Table
    key: Column
    graph: RelationGraph
    dates: dict[str, BoundDate]
    retain_until: Expr
    retain_depends: frozenset[str]
    phases: tuple[BoundPhase, ...]
    # the loaded policies whose subject is the same table and key, this one included: a hold
    # recorded under any of them before holds had a scope (migration 008) holds the person
    # under this policy too (set by check.bind_all; alone, the policy's own name)
    siblings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.loaded.name

    def table(self, qname: QName) -> Table:
        return self.catalog.tables[qname]

    def phase(self, name: str) -> BoundPhase:
        return next(p for p in self.phases if p.name == name)


@dataclass
class _Binder:
    loaded: LoadedPolicy
    catalog: Catalog
    problems: list[Problem] = field(default_factory=list)

    def error(self, path: PathKey, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.loaded.location(path), message, hint))

    def warn(self, path: PathKey, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.loaded.location(path), message, hint, "warning"))

    # -- tables and columns -------------------------------------------------------------
    def table(self, name: str, path: PathKey) -> Table | None:
        table = self.catalog.find(name)
        if table is None:
            close = self.catalog.suggest_table(name)
            hint = f"did you mean '{close}'?" if close else "check the table name and schema"
            self.error(path, f"unknown table '{name}'", hint)
        return table

    def column(self, table: Table, name: str, path: PathKey) -> Column | None:
        column = table.columns.get(name)
        if column is None:
            close = table.suggest_column(name)
            hint = f"did you mean '{close}'?" if close else f"columns: {', '.join(table.columns)}"
            self.error(path, f"unknown column '{name}' in table {table.name}", hint)
        return column

    # -- expressions ----------------------------------------------------------------------
    def expression(
        self, text: str, path: PathKey, names: Mapping[str, ExprType], want: ExprType
    ) -> Expr | None:
        try:
            expr = parse(text)
            got = typecheck(expr, names)
        except ExprError as exc:
            where = self.loaded.document.text_location(path, exc.line or 1, exc.column or 1)
            self.problems.append(Problem(where, exc.message, exc.hint))
            return None
        if got not in (want, ExprType.NULL):
            self.error(
                path, f"this expression gives a {got.name.lower()}, a {want.name.lower()} is needed"
            )
            return None
        return expr


def bind_policy(loaded: LoadedPolicy, catalog: Catalog) -> tuple[BoundPolicy | None, list[Problem]]:
    """Resolve one policy; returns it (or None when there are errors) and every problem."""
    binder = _Binder(loaded, catalog)
    policy = loaded.policy
    subject = binder.table(policy.subject.table, ("subject", "table"))
    if subject is None:
        return None, binder.problems
    key = binder.column(subject, policy.subject.key, ("subject", "key"))
    if key is not None and not subject.is_unique([key.name]):
        binder.error(
            ("subject", "key"),
            f"column '{key.name}' is not a unique key of {subject.name}",
            "use the primary key, or add a unique index",
        )
    graph = _graph(binder, subject, policy.subject.key)
    _check_names(binder, graph)
    dates = _dates(binder, subject, graph)
    # Every declared date is a known name, even one that failed to bind (no cascading errors).
    date_types = {name: ExprType.DATE for name in policy.dates}
    retain = binder.expression(policy.retain_until, ("retain_until",), date_types, ExprType.DATE)
    phase_names = {**date_types, RETAIN_UNTIL: ExprType.DATE}
    phases = tuple(
        bound
        for i, phase in enumerate(policy.phases)
        if (bound := _phase(binder, phase, i, subject, graph, phase_names, dates)) is not None
    )
    _check_date_indexes(binder, dates, graph)
    _check_archive_cascades(binder, graph)
    _check_blocking_keys(binder, graph)
    _check_hooks(binder, graph, {p.name: p for p in phases})
    errors = [p for p in binder.problems if p.severity == "error"]
    if (
        errors
        or key is None
        or retain is None
        or graph is None
        or len(phases) != len(policy.phases)
    ):
        return None, binder.problems
    retain_depends = _closure(_names(retain), dates)
    result = BoundPolicy(
        loaded, catalog, subject, key, graph, dates, retain, retain_depends, phases
    )
    return result, binder.problems


def _check_names(binder: _Binder, graph: RelationGraph | None) -> None:
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


def _check_archive_cascades(binder: _Binder, graph: RelationGraph | None) -> None:
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


CHANGING_DELETES = frozenset({"cascade", "set null", "set default"})


def _check_blocking_keys(binder: _Binder, graph: RelationGraph | None) -> None:
    """A table left out of the record (`related.exclude`, or not reached with
    `follow_foreign_keys: false`) whose foreign key references a table of the record ON DELETE
    NO ACTION or RESTRICT: a purge or an archive deleting a referenced row fails (SQLSTATE
    23503), so every batch holding such a subject fails and keeps everything. (The keys that
    cascade or set NULL are _check_archive_cascades' and _check_hooks' concern.)"""
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
        table = f"{fk.table[0]}.{fk.table[1]}"
        if fk.table in excluded:
            why = f"{fk.table[1]} is excluded from the record (related.exclude)"
        elif fk.table in members:
            why = (
                "foreign keys are not followed (follow_foreign_keys: false) and no link says "
                f"so, so {fk.ref_table[1]}'s rows are deleted before {fk.table[1]}'s"
            )
        else:
            why = (
                "foreign keys are not followed (follow_foreign_keys: false) and no link brings "
                f"{fk.table[1]} into the record"
            )
        if fk.table in excluded:
            fix = "remove it from related.exclude"
        elif len(fk.columns) == 1:
            target = "" if fk.ref_table == graph.subject else f", references: {fk.ref_table[1]}"
            fix = (
                f"declare the link {{table: {fk.table[1]}, column: {fk.columns[0]}{target}}} "
                "or set follow_foreign_keys: true"
            )
        else:
            fix = "set follow_foreign_keys: true"
        other = (
            "; or drop that foreign key"
            if action == "archive"
            else "; or declare the key ON DELETE SET NULL (the reference is cleared) or CASCADE "
            "(its rows go with the record's)"
        )
        binder.error(
            ("phases", i, "action"),
            f"{action}: {table} references {fk.ref_table[1]} through the foreign key "
            f"{fk.name} (ON DELETE {fk.on_delete.upper()}), but {why}: every batch deleting a "
            "referenced row would fail (SQLSTATE 23503) and keep everything",
            f"if its rows belong to the record, {fix}{other}",
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


def _check_hooks(
    binder: _Binder, graph: RelationGraph | None, bound: Mapping[str, BoundPhase]
) -> None:
    """Triggers and rules that the phase's statements set off run code this tool does not see:
    on DELETE, one may delete or change rows an archive does not hold (an error until the
    phase accepts it by name), or copy the row into a log that keeps it in the live base (a
    warning for a purge); on UPDATE, a history trigger keeps the old value a minimisation
    removes (a warning). A purge's deletes also reach the tables its foreign keys cascade to
    (DELETE) or set to NULL or a default (UPDATE); a column action that changes a partition key
    moves rows (DELETE and INSERT). Accepted names that match nothing are reported too. Rules
    cannot be accepted on an archive: PostgreSQL refuses `COPY (DELETE ... RETURNING)` on a
    table with a DELETE rule."""
    for i, phase in enumerate(binder.loaded.policy.phases):
        target = bound.get(phase.name)
        if target is None:
            continue
        hooks = _hooks_of(binder.catalog, phase.action, target, graph)
        accepted = {
            id(h)
            for j, name in enumerate(phase.triggers)
            for h in _accepted(binder, i, j, name, hooks)
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
            if id(hook) in accepted:
                continue
            _report_hook(binder, i, phase.action, event, hook)


def _report_hook(binder: _Binder, i: int, action: str, event: str, hook: Hook) -> None:
    what = f"{hook.label()} has the {event.upper()} {hook.kind} " + (
        f"{hook.name} ({hook.function})" if hook.function else hook.name
    )
    # schema.table.name when another schema has a table of that name; quoted for YAML
    same_name = [t for t in binder.catalog.tables if t[1] == hook.on[1]]
    parts = (*hook.on, hook.name) if len(same_name) > 1 else (hook.on[1], hook.name)
    hint = (
        "review what it does, then accept it in this phase: 'triggers: "
        f"[{json.dumps('.'.join(parts), ensure_ascii=False)}]'"
    )
    where = ("phases", i, "action")
    if action == "archive":
        runs = "for every row archived" if hook.per_row else "for each DELETE statement"
        binder.error(
            where,
            f"archive: {what}; it runs {runs} and may delete or change rows that no archive holds",
            hint,
        )
    elif action == "purge":
        binder.warn(
            where,
            f"purge: {what}; if it copies the rows it sees somewhere, that copy stays in the "
            "live base",
            hint + " (if it writes old values to a table, cover that table with a policy)",
        )
    elif event != "update":
        binder.warn(
            where,
            f"{action}: {what}; the phase changes a partition key, so rows move to another "
            "partition (deleted, then inserted) and it runs; if it logs old values, they stay "
            "in the live base",
            hint + " (if it writes old values to a table, cover that table with a policy)",
        )
    else:
        binder.warn(
            where,
            f"{action}: {what}; if it logs old values, they stay in the live base",
            hint + " (if it writes old values to a table, cover that table with a policy)",
        )


def _hooks_of(
    catalog: Catalog, action: str, phase: BoundPhase, graph: RelationGraph | None
) -> list[tuple[str, Hook]]:
    """(event, hook) of every trigger and rule the phase's statements set off."""
    if spec_of(action).removes_records:
        deleted = set(graph.tables) if graph is not None else set()
        changed: dict[QName, set[str]] = {}
        grew = True
        while grew:  # the tables the foreign keys carry the deletes to
            grew = False
            for fk in catalog.rooted_keys:
                if fk.ref_table not in deleted:
                    continue
                if graph is not None and is_link(
                    graph, fk.table, fk.ref_table, fk.columns, fk.ref_columns
                ):
                    continue  # a link of the record: its rows are deleted before the parent's
                if fk.on_delete == "cascade" and fk.table not in deleted:
                    deleted.add(fk.table)
                    grew = True
                elif fk.on_delete in ("set null", "set default"):
                    changed.setdefault(fk.table, set()).update(fk.columns)
        found = [
            ("delete", h) for h in catalog.hooks if h.table in deleted and "delete" in h.events
        ]
        return found + _updates(catalog, update_reach(catalog, changed).written)
    changed = {}
    for item in phase.columns:
        changed.setdefault(item.table.qname, set()).add(item.column.name)
    changed = update_reach(catalog, changed).written
    moved = {t for t, cs in changed.items() if cs & catalog.partition_keys.get(t, frozenset())}
    return _updates(catalog, changed) + [
        (event, h)
        for h in catalog.hooks
        if h.table in moved and h.kind == "trigger"
        for event in ("delete", "insert")
        if event in h.events
    ]


@dataclass
class Reach:
    """What an UPDATE sets off through foreign keys' ON UPDATE actions: the columns whose
    value changes (`changed`: a referenced key is checked only when its value changes), the
    columns written (`written`: a cascade writes every column of its key, which fires
    `UPDATE OF` triggers on them), and the keys that acted."""

    changed: dict[QName, set[str]]
    written: dict[QName, set[str]]
    keys: list[ForeignKey]


def update_reach(catalog: Catalog, written: Mapping[QName, set[str]]) -> Reach:
    """Follow ON UPDATE CASCADE, SET NULL and SET DEFAULT from the columns `written`, however
    deep the chain. CASCADE passes on the changed positions of the key only; SET NULL and SET
    DEFAULT change every column of the key."""
    changed = {table: set(columns) for table, columns in written.items()}
    wrote = {table: set(columns) for table, columns in written.items()}
    keys: list[ForeignKey] = []
    grew = True
    while grew:
        grew = False
        for fk in catalog.rooted_keys:
            if fk.on_update in ("no action", "restrict"):
                continue
            source = changed.get(fk.ref_table, set())
            positions = [i for i, c in enumerate(fk.ref_columns) if c in source]
            if not positions:
                continue
            moved = (
                {fk.columns[i] for i in positions} if fk.on_update == "cascade" else set(fk.columns)
            )
            target = changed.setdefault(fk.table, set())
            wrote.setdefault(fk.table, set()).update(fk.columns)
            if fk not in keys:
                keys.append(fk)
            if not moved <= target:
                target.update(moved)
                grew = True
    return Reach(changed, wrote, keys)


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
    binder: _Binder, i: int, j: int, name: str, hooks: list[tuple[str, Hook]]
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


def is_link(
    graph: RelationGraph,
    child: QName,
    parent: QName,
    columns: Sequence[str],
    ref_columns: Sequence[str],
) -> bool:
    """The foreign key is one of the record's links between two different tables (its rows
    are then archived and deleted before the parent's). A polymorphic link is not: the key
    would also act on the rows of the link's other classes."""
    return child != parent and any(
        e.kind != "polymorphic"
        and e.child == child
        and e.parent == parent
        and tuple(e.child_columns) == tuple(columns)
        and tuple(e.parent_columns) == tuple(ref_columns)
        for e in graph.edges
    )


# -- relation graph -----------------------------------------------------------------------
def _graph(binder: _Binder, subject: Table, key: str) -> RelationGraph | None:
    related = binder.loaded.policy.related
    declared = [
        edge
        for i, link in enumerate(related.links)
        for edge in _link_edges(binder, link, ("related", "links", i), subject)
    ]
    excluded: set[QName] = set()
    for i, name in enumerate(related.exclude):
        table = binder.table(name, ("related", "exclude", i))
        if table is not None:
            excluded.add(table.qname)
    # A purge could not delete a subject another one references: the key must give way. An
    # archive must not change another subject's row: with one, a batch the key would break
    # fails and keeps everything (see _check_archive_cascades), for its purge phases too.
    actions = {p.action for p in binder.loaded.policy.phases}
    strict = "purge" in actions and "archive" not in actions
    for fk in binder.catalog.referencing(subject.qname):
        if strict and fk.table == subject.qname and fk.on_delete not in ("set null", "cascade"):
            binder.error(
                ("subject", "table"),
                f"{subject.name} references itself through "
                f"{fk.name}: purging a row would break that reference",
                "declare the foreign key ON DELETE SET NULL",
            )
    try:
        return build_graph(
            binder.catalog, subject, key, declared, excluded, related.follow_foreign_keys
        )
    except RelationError as exc:
        binder.error(exc.where, exc.message, exc.hint)
        return None


def _link_edges(
    binder: _Binder, link: Link, path: PathKey, subject: Table
) -> Iterator[DeclaredEdge]:
    child = binder.table(link.table, (*path, "table"))
    if child is None:
        return
    if link.column is not None:
        parent = (
            subject
            if link.references is None
            else binder.table(link.references, (*path, "references"))
        )
        column = binder.column(child, link.column, (*path, "column"))
        if parent is None or column is None:
            return
        if len(parent.primary_key) != 1:
            binder.error(path, f"{parent.name} has no single-column primary key to link to")
            return
        _check_key_types(binder, column, parent.columns[parent.primary_key[0]], path)
        edge = Edge(
            child.qname,
            parent.qname,
            "column",
            (column.name,),
            parent.primary_key,
            origin=f"declared link {child.name}.{column.name}",
        )
        yield DeclaredEdge(edge, path)
        return
    poly = link.polymorphic
    assert poly is not None  # guaranteed by the model
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


def _check_key_types(binder: _Binder, column: Column, key: Column, path: PathKey) -> None:
    if column.is_number != key.is_number or column.is_text != key.is_text:
        binder.error(path, f"'{column.name}' ({column.type}) cannot hold keys of type {key.type}")


# -- dates --------------------------------------------------------------------------------
def _dates(binder: _Binder, subject: Table, graph: RelationGraph | None) -> dict[str, BoundDate]:
    specs = binder.loaded.policy.dates
    out: dict[str, BoundDate] = {}
    for name, spec in specs.items():
        path: PathKey = ("dates", name)
        if name == RETAIN_UNTIL:
            binder.error(path, "'retain_until' is reserved", "choose another name")
            continue
        if isinstance(spec, ColumnDate):
            bound = _column_date(binder, name, spec, subject, path)
        elif isinstance(spec, AggregateDate):
            bound = _aggregate_date(binder, name, spec, graph, path)
        else:
            others = {n: ExprType.DATE for n in specs if n != name}
            expr = binder.expression(spec, path, others, ExprType.DATE)
            bound = (
                None
                if expr is None
                else BoundDate(name, "expression", value=expr, depends=frozenset(_names(expr)))
            )
        if bound is not None:
            out[name] = bound
    _check_date_cycles(binder, out)
    return out


def _column_date(
    binder: _Binder, name: str, spec: ColumnDate, subject: Table, path: PathKey
) -> BoundDate | None:
    column = binder.column(subject, spec.column, (*path, "column"))
    if column is None:
        return None
    if column.is_text and spec.format is None:
        binder.error(
            (*path, "column"),
            f"'{column.name}' is stored as {column.type}",
            "add 'format: YYYY-MM-DD' (or DD/MM/YYYY, YYYYMMDD) to read it as a date",
        )
        return None
    if not column.is_text and not column.is_date:
        binder.error((*path, "column"), f"'{column.name}' is {column.type}, not a date")
        return None
    if column.is_date and spec.format is not None:
        binder.warn(
            (*path, "format"), f"'{column.name}' is already a {column.type}; 'format' is ignored"
        )
    return BoundDate(
        name,
        "column",
        column=column,
        format=spec.format if column.is_text else None,
        if_missing=spec.if_missing,
    )


def _aggregate_date(
    binder: _Binder, name: str, spec: AggregateDate, graph: RelationGraph | None, path: PathKey
) -> BoundDate | None:
    value_path: PathKey = (*path, "latest" if spec.latest is not None else "earliest")
    over_name = spec.over or _table_of(spec.value)
    if over_name is None:
        binder.error(
            path,
            "which table do these rows come from?",
            "add 'over: <table>' or qualify the column as table.column",
        )
        return None
    over = binder.table(over_name, (*path, "over") if spec.over else value_path)
    if over is None or graph is None:
        return None
    if over.qname == graph.subject:
        binder.error(
            (*path, "over") if spec.over else value_path,
            f"{over.name} is the subject table itself: a subject has one row there, not rows "
            "to take the latest or earliest of",
            f"read the column directly: '{name}: {{column: <column of {over.name}>}}' "
            "(with 'format:' for a date stored as text)",
        )
        return None
    if over.qname not in graph.tables:
        binder.error(
            (*path, "over") if spec.over else value_path,
            f"{over.name} is not related to the subject",
            "add a foreign key, or declare a link under related.links",
        )
        return None
    joins = _joins(binder, over)
    names = _column_types(over, qualified=False) | _column_types(over, qualified=True)
    for qname in joins:
        names |= _column_types(binder.catalog.tables[qname], qualified=True)
    value = binder.expression(spec.value, value_path, names, ExprType.DATE)
    where = (
        None
        if spec.where is None
        else binder.expression(spec.where, (*path, "where"), names, ExprType.BOOLEAN)
    )
    if value is None or (spec.where is not None and where is None):
        return None
    used = {n.table for n in _name_nodes(value, where) if n.table and n.table != over.name}
    join_list = tuple(join for q, join in joins.items() if q[1] in used)
    return BoundDate(
        name,
        "aggregate",
        function=spec.function,
        over=over,
        joins=join_list,
        value=value,
        where=where,
    )


def _joins(binder: _Binder, over: Table) -> dict[QName, Join]:
    """The tables an aggregate over `over` can read a value from, each through one join: its
    foreign keys, then the policy's column links declared on `over` (a consultation's date in
    its planning slot when no foreign key says so); a declared link whose parent is not in
    the record serves these joins only."""
    joins = {
        fk.ref_table: Join(
            binder.catalog.tables[fk.ref_table],
            fk.columns,
            fk.ref_columns,
            f"foreign key {fk.name}",
        )
        for fk in binder.catalog.outgoing(over.qname)
    }
    for i, link in enumerate(binder.loaded.policy.related.links):
        child = binder.catalog.find(link.table)
        if link.column is None or child is None or child.qname != over.qname:
            continue
        parent = binder.catalog.find(link.references or binder.loaded.policy.subject.table)
        if parent is None or len(parent.primary_key) != 1 or link.column not in over.columns:
            continue  # reported by _link_edges
        joins.setdefault(
            parent.qname,
            Join(
                parent,
                (link.column,),
                parent.primary_key,
                f"declared link related.links[{i}] {over.name}.{link.column}",
            ),
        )
    return joins


def _column_types(table: Table, *, qualified: bool) -> dict[str, ExprType]:
    out = {}
    for column in table.columns.values():
        kind = _expr_type(column)
        if kind is not None:
            out[f"{table.name}.{column.name}" if qualified else column.name] = kind
    return out


def _expr_type(column: Column) -> ExprType | None:
    if column.is_date:
        return ExprType.DATE
    if column.is_text:
        return ExprType.TEXT
    if column.is_number:
        return ExprType.NUMBER
    if column.base_type == "boolean":
        return ExprType.BOOLEAN
    return None


def _table_of(text: str) -> str | None:
    head = text.strip().split("(")[-1].split(",")[0].strip()
    return head.rsplit(".", 1)[0] if "." in head else None


def _check_date_cycles(binder: _Binder, dates: dict[str, BoundDate]) -> None:
    for name, date_ in dates.items():
        if name in _closure(date_.depends, dates):
            binder.error(("dates", name), f"date '{name}' depends on itself")


def _closure(names: set[str] | frozenset[str], dates: dict[str, BoundDate]) -> frozenset[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in dates:
            todo.extend(dates[name].depends)
    return frozenset(seen)


def _check_date_indexes(
    binder: _Binder, dates: dict[str, BoundDate], graph: RelationGraph | None
) -> None:
    if graph is None:
        return
    for name, date in dates.items():
        if date.over is None:
            continue
        for path in graph.paths_to_subject(date.over.qname):
            edge = path[0]
            table = binder.catalog.tables[edge.child]
            if not table.is_indexed(edge.child_columns):
                binder.warn(
                    ("dates", name),
                    f"no index on {table.name}"
                    f"({', '.join(edge.child_columns)}): computing '{name}' scans the "
                    "whole table",
                    f"CREATE INDEX ON {table.label} ({', '.join(edge.child_columns)})",
                )


# -- phases -------------------------------------------------------------------------------
def _phase(
    binder: _Binder,
    phase: Phase,
    index: int,
    subject: Table,
    graph: RelationGraph | None,
    names: Mapping[str, ExprType],
    dates: dict[str, BoundDate],
) -> BoundPhase | None:
    path: PathKey = ("phases", index)
    due = binder.expression(phase.due, (*path, "due"), names, ExprType.DATE)
    columns = []
    for j, spec in enumerate(phase.column_specs()):
        bound = _target_column(binder, phase.action, spec, (*path, "columns", j), subject, graph)
        if bound is not None:
            columns.append(bound)
    if due is None or len(columns) != len(phase.columns):
        return None
    depends = _closure(_names(due), dates)
    return BoundPhase(phase.name, phase.action, due, tuple(columns), depends)


def _update_problem(
    catalog: Catalog, table: Table, column: Column, action: str, spec: ColumnSpec
) -> tuple[str, str] | None:
    """Why writing `column` would fail through foreign keys: a key ON UPDATE NO ACTION or
    RESTRICT references a value that changes (here or down a chain of ON UPDATE actions), or
    a NULL reaches a NOT NULL referencing column (SET NULL, or a cascade of an erased value)."""
    reach = update_reach(catalog, {table.qname: {column.name}})
    label = f"'{column.name}' of {table.name}"
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


def _target_column(
    binder: _Binder,
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
    if (
        column.name in table.primary_key
        or any(column.name in fk.columns for fk in binder.catalog.outgoing(table.qname))
        or column.name in _link_columns(graph, table.qname)
    ):
        binder.error(
            path,
            f"'{column.name}' is a key or a link of {table.name}; "
            f"{action} would break the relation",
            "act on the other columns",
        )
        return None
    refused = _update_problem(binder.catalog, table, column, action, spec)
    if refused is not None:  # CASCADE, SET NULL, SET DEFAULT otherwise: listed with the triggers
        binder.error(path, refused[0], refused[1])
        return None
    if spec_of(action).writes_by_key and not table.primary_key:
        binder.error(
            path,
            f"{table.name} has no primary key; {action} writes rows back by key",
            "add a primary key to the table",
        )
        return None
    problem = spec_of(action).refusal(spec, column)
    if problem is not None:
        binder.error(path, problem[0], problem[1])
        return None
    return BoundColumn(table, column, spec)


def _link_columns(graph: RelationGraph, table: QName) -> set[str]:
    out: set[str] = set()
    for edge in graph.edges:
        if edge.child == table:
            out.update(edge.child_columns)
            if edge.class_column:
                out.add(edge.class_column)
    return out


# -- expression helpers -------------------------------------------------------------------
def _name_nodes(*exprs: Expr | None) -> Iterator[Name]:
    for expr in exprs:
        if expr is not None:
            yield from (node for node in expr.walk() if isinstance(node, Name))


def _names(expr: Expr) -> set[str]:
    return {node.name for node in _name_nodes(expr) if node.table is None}
