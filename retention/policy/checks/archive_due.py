"""An archive phase due when the record's retention is already over: said by `check`.

An archive is the record's intermediate copy (archivage intermédiaire): it is kept until the
end of retention, and archive expiry destroys each group the day after the last day of its
month of `retain_until`. A phase `action: archive` due on or after `retain_until` therefore
archives records whose retention has ended: their archive is destroyed at the first run after
that month (that year, with `archive_group: year`), often the next run: a purge with an
encrypted copy kept for days, at most months. It is usually a slip for a purge, or for an
archive due earlier (`due: derniere_venue + 5 years`). Nothing is lost either way, so `check`
warns.

Answered as `without_rows` answers its question: the due date and `retain_until` evaluated in
Python (the same reading as the SQL) for sample subjects whose dates take a few sample days
each (and none, for a date that may be missing); the phase is named when, in every sample where
both have a value, the due date is not before `retain_until`. With more dates than can be
sampled apart, only a due date written from `retain_until` itself is judged (dates sampled
alike would make subjects that say nothing: a false warning). An archive due shortly before
`retain_until` (`derniere_venue + 20 years` under R1112-7) is not named: it is before for some
subjects, and how short is too short is the policy's author's call.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import date

from retention.policy.bound import RETAIN_UNTIL, BoundDate, BoundPhase
from retention.policy.checks.binder import Binder
from retention.policy.checks.without_rows import (
    MAX_APART,
    SAMPLE_TODAY,
    resolve_expressions,
    sample_days,
    used_names,
)
from retention.policy.expr import Expr, evaluate
from retention.policy.expr.nodes import Arith, ExprError, IntervalLit, Name


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
            "is not before retain_until, the end of retention, for any sample record): archive "
            "expiry destroys each archived record after the month (or year, with archive_group: "
            "year) in which its retention ended, so most copies last days, at most months",
            "archive earlier to keep an intermediate copy until the end of retention (e.g. "
            "'due: derniere_venue + 5 years'), or destroy at retain_until with 'action: purge'",
        )


def _never_before(due: Expr, dates: Mapping[str, BoundDate], retain: Expr) -> bool:
    """True when `due` is on or after `retain_until` for every sample subject where both have
    a value (and there is such a subject)."""
    if _from_retain_until(due):
        return True
    used = used_names(due, dates, retain) | used_names(retain, dates, None)
    sampled = sorted(n for n in used if n in dates and dates[n].kind != "expression")
    if len(sampled) > MAX_APART:
        return False  # too many to sample apart: only the written forms above are judged
    choices = [sample_days(dates[n]) for n in sampled]
    compared = False
    for combination in itertools.product(*choices):
        values: dict[str, object] = dict(zip(sampled, combination, strict=True))
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


def _from_retain_until(due: Expr) -> bool:
    """`retain_until`, or `retain_until + <duration>` (a positive one), as written."""
    if isinstance(due, Name):
        return due.table is None and due.name == RETAIN_UNTIL
    if isinstance(due, Arith) and due.op == "+" and isinstance(due.right, IntervalLit):
        return due.right.amount >= 0 and _from_retain_until(due.left)
    return False
