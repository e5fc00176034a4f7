"""An archive phase due when the record's retention is already over: said by `check`.

An archive is the record's intermediate copy (archivage intermédiaire): it is kept until the
end of retention, and archive expiry destroys each group the day after the last day of its
month of `retain_until`. A phase `action: archive` due on or after `retain_until` therefore
archives records whose retention has ended: their archive is destroyed at the first run after
that month, often the next run, which is a purge with an encrypted copy kept for a few days at
most. It is usually a slip for a purge, or for an archive due earlier
(`due: derniere_venue + 5 years`). Nothing is lost either way, so `check` warns.

Answered as `without_rows` answers its question: the due date and `retain_until` evaluated in
Python (the same reading as the SQL) for sample subjects whose dates take a few sample days
each; the phase is named when, in every sample where both have a value, the due date is not
before `retain_until`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import date

from retention.policy.bound import RETAIN_UNTIL, BoundDate, BoundPhase
from retention.policy.checks.binder import Binder
from retention.policy.checks.without_rows import (
    MAX_APART,
    SAMPLE_DAYS,
    SAMPLE_TODAY,
    resolve_expressions,
    used_names,
)
from retention.policy.expr import Expr, evaluate
from retention.policy.expr.nodes import ExprError, Name


def check_archive_after_retention(
    binder: Binder,
    dates: Mapping[str, BoundDate],
    retain: Expr | None,
    phases: Mapping[str, BoundPhase],
) -> None:
    """Warn for each archive phase whose due date never comes before `retain_until`."""
    if retain is None or len(dates) != len(binder.loaded.policy.dates):
        return  # retain_until or some date did not bind (reported already)
    for index, phase in enumerate(binder.loaded.policy.phases):
        bound = phases.get(phase.name)
        if bound is None or bound.action != "archive":
            continue
        if not _never_before(bound.due, dates, retain):
            continue
        binder.warn(
            ("phases", index, "due"),
            f"phase {phase.name!r} archives records whose retention has ended (its due date "
            "is never before retain_until): archive expiry destroys each archive after the "
            "month of its retain_until, at the next run for most of them",
            "archive earlier to keep an intermediate copy until the end of retention (e.g. "
            "'due: derniere_venue + 5 years'), or destroy at retain_until with 'action: purge'",
        )


def _never_before(due: Expr, dates: Mapping[str, BoundDate], retain: Expr) -> bool:
    """True when `due` is on or after `retain_until` for every sample subject where both have
    a value (and there is such a subject)."""
    if isinstance(due, Name) and due.table is None and due.name == RETAIN_UNTIL:
        return True
    used = used_names(due, dates, retain) | used_names(retain, dates, None)
    sampled = sorted(n for n in used if n in dates and dates[n].kind != "expression")
    apart, alike = sampled[:MAX_APART], sampled[MAX_APART:]
    compared = False
    for combination in itertools.product(SAMPLE_DAYS, repeat=len(apart)):
        values: dict[str, object] = dict(zip(apart, combination, strict=True))
        values |= {n: combination[0] if combination else SAMPLE_DAYS[0] for n in alike}
        try:
            resolve_expressions(values, dates, retain, used | {RETAIN_UNTIL})
            end = values.get(RETAIN_UNTIL)
            when = evaluate(due, values, SAMPLE_TODAY)
        except ExprError:
            continue  # a sample out of the calendar's range: says nothing
        if not isinstance(end, date) or not isinstance(when, date):
            continue  # undeterminable for this sample
        if when < end:
            return False
        compared = True
    return compared
