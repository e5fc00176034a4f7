"""A clock that still runs for a subject without any related row: said by `check`.

`greatest()`, `least()` and `coalesce()` leave nulls out, as PostgreSQL does. A due date written
`greatest(dernier_sejour + 20 years, naissance + 28 years)` therefore has a value for a patient
with no recorded stay at all: the 28th birthday alone, although the author meant the clock to
run from the last stay. Nothing in the schema says that this is wrong (it may be meant), so
`check` warns, naming the phase, the dates left out and the guard that keeps such subjects.

The question is answered by evaluating the due expression in Python (the same reading as the
SQL, `retention.policy.expr.evaluate`) with every date taken from related rows missing and the
subject's own dates set to a few sample days (missing too where the date allows it): a value
for any of them is a clock without rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import date

from retention.policy.bound import RETAIN_UNTIL, BoundDate, BoundPhase
from retention.policy.checks.binder import Binder
from retention.policy.expr import Expr, evaluate
from retention.policy.expr.nodes import ExprError, Name
from retention.policy.source import PathKey

SAMPLE_DAYS = (date(1930, 1, 1), date(1990, 6, 15), date(2024, 2, 29))
SAMPLE_TODAY = date(2030, 1, 1)
MAX_APART = 4  # subject dates sampled independently (4 values each: 256 combinations at most)


def check_clock_without_rows(
    binder: Binder,
    dates: Mapping[str, BoundDate],
    retain: Expr | None,
    phases: Mapping[str, BoundPhase],
) -> None:
    """Warn for `retain_until` and for each phase's own `due` (one not simply `retain_until`)
    that gives a due date to a subject none of whose related-row dates exist."""
    aggregates = sorted(n for n, d in dates.items() if d.kind == "aggregate")
    if not aggregates or len(dates) != len(binder.loaded.policy.dates):
        return  # no date from related rows, or some date did not bind (reported already)
    candidates: list[tuple[Expr, PathKey]] = [] if retain is None else [(retain, ("retain_until",))]
    for index, phase in enumerate(binder.loaded.policy.phases):
        bound = phases.get(phase.name)
        if bound is not None and not _is_name(bound.due, RETAIN_UNTIL):
            candidates.append((bound.due, ("phases", index, "due")))
    for expr, path in candidates:
        used = used_names(expr, dates, retain)
        rows = [n for n in aggregates if n in used]
        if not rows or not _runs_without_rows(expr, dates, retain):
            continue
        own = sorted(n for n in used if n in dates and dates[n].kind == "column")
        tables = sorted({d.over.name for n in rows if (d := dates[n]).over is not None})
        binder.warn(
            path,
            f"a subject without any {', '.join(tables)} row still gets a due date here "
            f"({', '.join(rows)} missing; greatest(), least() and coalesce() leave them out)"
            + (f", from {', '.join(own)} alone" if own else ""),
            f"to keep such subjects (undeterminable), start with 'if {_guard(expr, rows, dates)} "
            "then null else ...'; leave it as it is only if they are meant to be judged that way",
        )


def _guard(expr: Expr, rows: list[str], dates: Mapping[str, BoundDate]) -> str:
    """The condition that holds when a subject has none of the related rows `rows` come
    from: a named date `expr` reads that combines them all (`derniere_venue`, of the last
    stay and consultation), else each of them missing. Guarding on one of several (the last
    stay alone) would keep the subjects seen only in consultation undeterminable forever."""
    for node in expr.walk():
        if not isinstance(node, Name) or node.table is not None:
            continue
        found = dates.get(node.name)
        if (
            found is not None
            and found.kind == "expression"
            and set(rows) <= used_names(Name(node.name), dates, None)
        ):
            return f"{node.name} is null"
    return " and ".join(f"{name} is null" for name in rows)


def _is_name(expr: Expr, name: str) -> bool:
    return isinstance(expr, Name) and expr.table is None and expr.name == name


def used_names(expr: Expr, dates: Mapping[str, BoundDate], retain: Expr | None) -> set[str]:
    """Every date name `expr` reads, however deep (through named expressions and
    retain_until)."""
    seen: set[str] = set()
    todo = [expr]
    while todo:
        for node in todo.pop().walk():
            if not isinstance(node, Name) or node.table is not None or node.name in seen:
                continue
            name = node.name
            seen.add(name)
            date_ = dates.get(name)
            if name == RETAIN_UNTIL and retain is not None:
                todo.append(retain)
            elif date_ is not None and date_.kind == "expression" and date_.value is not None:
                todo.append(date_.value)
    return seen


def _runs_without_rows(expr: Expr, dates: Mapping[str, BoundDate], retain: Expr | None) -> bool:
    """True when `expr` has a value for some sample subject with no related row. Only the
    subject's dates that `expr` reads are sampled, all alike past MAX_APART of them (the
    binding of every command runs this: a few hundred evaluations at most)."""
    used = used_names(expr, dates, retain)
    own = sorted(n for n in used if n in dates and dates[n].kind == "column")
    apart, alike = own[:MAX_APART], own[MAX_APART:]
    choices = [sample_days(dates[n]) for n in apart]
    for combination in itertools.product(*choices):
        values: dict[str, object] = dict(zip(apart, combination, strict=True))
        values |= {n: combination[0] if combination else SAMPLE_DAYS[0] for n in alike}
        values |= {n: None for n, d in dates.items() if d.kind == "aggregate"}
        try:
            resolve_expressions(values, dates, retain, used)
            if evaluate(expr, values, SAMPLE_TODAY) is not None:
                return True
        except ExprError:
            continue  # a sample out of the calendar's range: says nothing
    return False


def sample_days(bound: BoundDate) -> tuple[date | None, ...]:
    """The sample values of a subject's date: missing too where `if_missing: null` allows it."""
    return (*SAMPLE_DAYS, None) if bound.if_missing == "null" else SAMPLE_DAYS


def resolve_expressions(
    values: dict[str, object],
    dates: Mapping[str, BoundDate],
    retain: Expr | None,
    used: set[str],
) -> None:
    """The named expression dates (and retain_until) among `used`, over `values`, in
    dependency order."""
    pending = {
        n: d.value
        for n, d in dates.items()
        if d.kind == "expression" and d.value is not None and n in used
    }
    if retain is not None and RETAIN_UNTIL in used:
        pending[RETAIN_UNTIL] = retain
    while pending:
        ready = [n for n, e in pending.items() if used_names(e, {}, None) <= values.keys()]
        if not ready:
            return  # a cycle: reported by the dates' own check
        for name in ready:
            values[name] = evaluate(pending.pop(name), values, SAMPLE_TODAY)
