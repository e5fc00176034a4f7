"""What `check --no-database` checks of a policy file without the catalogue.

A compliance officer edits a policy on a machine that cannot reach the database: every
expression's syntax is checked there, and the types of those whose names are all dates
(`retain_until`, each phase's `due`, a date derived from others). An aggregate's value and
filter name columns, whose types only the catalogue knows: syntax only. An outside review
found `3 yeers`, `greatest()`, `derniere_venue + derniere_venue` and `retain_until:
retain_until + 1 year` called valid by `check --no-database`.
"""

from __future__ import annotations

from retention.engines.catalogue import Catalog
from retention.errors import Problem
from retention.policy.bound import RETAIN_UNTIL
from retention.policy.checks.binder import Binder
from retention.policy.expr import ExprError, ExprType, parse
from retention.policy.load import LoadedPolicy
from retention.policy.model import AggregateDate, ColumnDate


def expression_problems(loaded: LoadedPolicy) -> list[Problem]:
    """Each expression of the policy that does not parse, or (over dates only) does not give
    a date: the binder's own reading of expressions, with no catalogue."""
    policy = loaded.policy
    binder = Binder(loaded, Catalog({}, ()))
    dates = {name: ExprType.DATE for name in policy.dates}
    for name, spec in policy.dates.items():
        if isinstance(spec, AggregateDate):  # columns whose types only the catalogue knows
            which = "latest" if spec.latest is not None else "earliest"
            for path, text in (
                (("dates", name, which), spec.value),
                (("dates", name, "where"), spec.where),
            ):
                if text is not None:
                    _syntax(binder, text, path)
        elif not isinstance(spec, ColumnDate):
            others = {n: t for n, t in dates.items() if n != name}
            binder.expression(spec, ("dates", name), others, ExprType.DATE)
    binder.expression(policy.retain_until, ("retain_until",), dates, ExprType.DATE)
    for i, phase in enumerate(policy.phases):
        names = {**dates, RETAIN_UNTIL: ExprType.DATE}
        binder.expression(phase.due, ("phases", i, "due"), names, ExprType.DATE)
    return binder.problems


def _syntax(binder: Binder, text: str, path: tuple[str | int, ...]) -> None:
    try:
        parse(text)
    except ExprError as exc:
        where = binder.loaded.document.text_location(path, exc.line or 1, exc.column or 1)
        binder.problems.append(Problem(where, exc.message, exc.hint))
