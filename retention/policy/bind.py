"""Bind a policy to the live catalogue: run every check (retention.policy.checks) in a fixed
order, collect every problem with its file position, and build the bound policy
(retention.policy.bound) that plans and actions are computed from.

Nothing here executes SQL; the catalogue was read once beforehand.
"""

from __future__ import annotations

from collections.abc import Mapping

from retention.catalog.introspect import Catalog, Table
from retention.errors import Problem
from retention.policy.bound import RETAIN_UNTIL, BoundDate, BoundPhase, BoundPolicy
from retention.policy.checks.archive_due import check_archive_after_retention
from retention.policy.checks.binder import Binder
from retention.policy.checks.columns import bind_phase
from retention.policy.checks.dates import bind_dates, check_date_indexes, closure, names_in
from retention.policy.checks.deletes import check_archive_cascades, check_blocking_keys
from retention.policy.checks.hooks import check_hooks
from retention.policy.checks.links import (
    check_join_columns,
    check_two_owner_links,
    relation_graph,
)
from retention.policy.checks.on_update import check_on_update
from retention.policy.checks.row_keys import check_row_keys
from retention.policy.checks.row_security import check_inheritance, check_row_security
from retention.policy.checks.subject import check_names, subject_key
from retention.policy.checks.transactions import check_transactions
from retention.policy.checks.versioning import check_versioning
from retention.policy.checks.without_rows import check_clock_without_rows
from retention.policy.expr import ExprType
from retention.policy.load import LoadedPolicy
from retention.policy.relations import RelationGraph


def bind_policy(loaded: LoadedPolicy, catalog: Catalog) -> tuple[BoundPolicy | None, list[Problem]]:
    """Resolve one policy; returns it (or None when there are errors) and every problem."""
    binder = Binder(loaded, catalog)
    subject = binder.table(loaded.policy.subject.table, ("subject", "table"))
    bound = None if subject is None else _bind(binder, subject)
    return bound, binder.problems


def _bind(binder: Binder, subject: Table) -> BoundPolicy | None:
    policy = binder.loaded.policy
    key = subject_key(binder, subject)
    graph = relation_graph(binder, subject, policy.subject.key)
    check_names(binder, graph)
    dates = bind_dates(binder, subject, graph)
    # Every declared date is a known name, even one that failed to bind (no cascading errors).
    date_types = {name: ExprType.DATE for name in policy.dates}
    retain = binder.expression(policy.retain_until, ("retain_until",), date_types, ExprType.DATE)
    phases = _phases(binder, subject, graph, {**date_types, RETAIN_UNTIL: ExprType.DATE}, dates)
    check_date_indexes(binder, dates, graph)
    check_archive_cascades(binder, graph)
    check_blocking_keys(binder, graph)
    check_two_owner_links(binder, graph)
    check_join_columns(binder, graph)
    check_row_security(binder, graph)
    check_inheritance(binder, graph)
    by_name = {p.name: p for p in phases}
    check_hooks(binder, graph, by_name)
    check_transactions(binder, graph, by_name)
    check_row_keys(binder, graph, by_name)
    check_versioning(binder, graph, by_name)
    check_on_update(binder, subject, graph, dates, by_name)
    check_clock_without_rows(binder, dates, retain, by_name)
    check_archive_after_retention(binder, dates, retain, by_name)
    if binder.has_errors or key is None or retain is None or graph is None:
        return None
    if len(phases) != len(policy.phases):
        return None
    depends = closure(names_in(retain), dates)
    return BoundPolicy(
        binder.loaded, binder.catalog, subject, key, graph, dates, retain, depends, phases
    )


def _phases(
    binder: Binder,
    subject: Table,
    graph: RelationGraph | None,
    names: Mapping[str, ExprType],
    dates: dict[str, BoundDate],
) -> tuple[BoundPhase, ...]:
    """The phases that bind (each one that does not is reported)."""
    return tuple(
        bound
        for i, phase in enumerate(binder.loaded.policy.phases)
        if (bound := bind_phase(binder, phase, i, subject, graph, names, dates)) is not None
    )
