"""Phases that change a column a clock reads, across every policy bound together.

A legal clock counts from dates in the data: a birth date, a stay's discharge, a death. A
phase that writes such a column moves the clock of every record it touches. Generalising a
birth date to its year (`1975-06-21` becomes `1975-01-01` on a date column) brings the 28th
birthday of R1112-7 up to 364 days earlier: the record would be destroyed early, a legal
fault. On a text date (`1975-00-00`) or by an erase, the date becomes unreadable and the
record is kept forever, past its legal period (Code pénal art. 226-20). Found by an outside
review: a `generalize {column: naissance, to: year}` phase beside dossier-medical's clock, no
warning, and the plan of 2046 went from 158 subjects due to 39.

So it is an error for the phase that writes the column, whichever policy's clock reads it
(its own or another's): the dates each policy's due dates and `retain_until` use, through
their columns, aggregated values and filters (`on_update.date_columns`), the links that tie
an aggregate's rows to the subject and its joins, against the columns each phase writes, ON
UPDATE actions of the foreign keys included (`cascades.phase_writes`); a generated column
counts its base columns (`Column.generated_from`). Not seen: triggers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator

from retention.errors import Problem
from retention.policy.bound import BoundDate, BoundPolicy
from retention.policy.checks.cascades import phase_writes
from retention.policy.checks.dates import closure, names_in
from retention.policy.checks.on_update import date_columns
from retention.policy.relations import QName

Reader = tuple[str, str]  # (policy, date)


def clock_input_problems(policies: Iterable[BoundPolicy]) -> dict[str, list[Problem]]:
    """The errors of each policy (by name) with a phase writing a column some clock reads."""
    policies = list(policies)
    readers = _readers(policies)
    found: dict[str, list[Problem]] = defaultdict(list)
    for policy in policies:
        for i, phase in enumerate(policy.phases):
            writes = phase_writes(policy.catalog, policy.graph, phase).updated
            for (qname, column), read_by in _read_columns(writes, readers):
                table = policy.catalog.tables[qname].name
                dates = ", ".join(
                    f"date '{date}' of policy '{reader}'" for reader, date in sorted(read_by)
                )
                found[policy.name].append(
                    Problem(
                        policy.loaded.location(("phases", i)),
                        f"phase '{phase.name}' ({phase.action}) writes {table}.{column}, which a "
                        f"legal clock reads ({dates}): each row it changes moves that date, "
                        "so a record would be destroyed before its legal end or kept past it",
                        "leave the column as it is until the record is purged or archived, or "
                        "compute the date from another column",
                    )
                )
    return dict(found)


def _readers(policies: list[BoundPolicy]) -> dict[tuple[QName, str], set[Reader]]:
    """The columns the clocks read: those of the dates that a policy's due dates and
    `retain_until` use, however deep."""
    readers: dict[tuple[QName, str], set[Reader]] = defaultdict(set)
    for policy in policies:
        used = set(policy.retain_depends)
        for phase in policy.phases:
            used |= closure(names_in(phase.due), policy.dates)
        for name in sorted(used & set(policy.dates)):
            date = policy.dates[name]
            for table, column in date_columns(policy.subject, date):
                readers[(table.qname, column.name)].add((policy.name, name))
                for base in column.generated_from:  # computed from: writing it changes it
                    readers[(table.qname, base)].add((policy.name, name))
            for qname, column_name in _path_columns(policy, date):
                readers[(qname, column_name)].add((policy.name, name))
    return readers


def _path_columns(policy: BoundPolicy, date: BoundDate) -> Iterator[tuple[QName, str]]:
    """The columns that tie an aggregate's rows to the subject (each link of each path, its
    class column included) and its joins to the tables holding the value: rewriting one
    moves rows in or out of a subject's date (a review: another policy erasing
    consultations.patient_id, the link dossier-medical's last consultation is read through,
    passed check; the patients' last visits would have moved earlier)."""
    if date.over is None:
        return
    for path in policy.graph.paths_to_subject(date.over.qname):
        for edge in path:
            yield from ((edge.child, c) for c in edge.child_columns)
            yield from ((edge.parent, c) for c in edge.parent_columns)
            if edge.class_column is not None:
                yield edge.child, edge.class_column
    for join in date.joins:
        yield from ((date.over.qname, c) for c in join.columns)
        yield from ((join.table.qname, c) for c in join.ref_columns)


def _read_columns(
    writes: dict[QName, set[str]], readers: dict[tuple[QName, str], set[Reader]]
) -> list[tuple[tuple[QName, str], set[Reader]]]:
    return [
        ((qname, column), readers[(qname, column)])
        for qname in sorted(writes)
        for column in sorted(writes[qname])
        if (qname, column) in readers
    ]
