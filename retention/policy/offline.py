"""What `check --no-database` checks of a policy file without the catalogue.

A compliance officer edits a policy on a machine that cannot reach the database: every
expression's syntax is checked there, and the types of those whose names are all dates
(`retain_until`, each phase's `due`, a date derived from others). An aggregate's value and
filter name columns, whose types only the catalogue knows: syntax only. An outside review
found `3 yeers`, `greatest()`, `derniere_venue + derniere_venue` and `retain_until:
retain_until + 1 year` called valid by `check --no-database`.
"""

from __future__ import annotations

from collections.abc import Mapping

from retention.errors import Problem
from retention.policy.bound import RETAIN_UNTIL
from retention.policy.expr import ExprError, ExprType, parse, typecheck
from retention.policy.load import LoadedPolicy
from retention.policy.model import AggregateDate, ColumnDate
from retention.policy.source import PathKey


def expression_problems(loaded: LoadedPolicy) -> list[Problem]:
    """Each expression of the policy that does not parse, or (over dates only) does not give
    a date."""
    policy = loaded.policy
    dates = {name: ExprType.DATE for name in policy.dates}
    problems: list[Problem] = []

    def check(text: str, path: PathKey, names: Mapping[str, ExprType] | None) -> None:
        try:
            expr = parse(text)
            got = ExprType.DATE if names is None else typecheck(expr, names)
        except ExprError as exc:
            where = loaded.document.text_location(path, exc.line or 1, exc.column or 1)
            problems.append(Problem(where, exc.message, exc.hint))
            return
        if got not in (ExprType.DATE, ExprType.NULL):
            problems.append(
                Problem(
                    loaded.location(path),
                    f"this expression gives {got.label}, a date is needed",
                )
            )

    for name, spec in policy.dates.items():
        if isinstance(spec, AggregateDate):
            check(spec.value, ("dates", name, "latest" if spec.latest else "earliest"), None)
            if spec.where is not None:
                _syntax(loaded, spec.where, ("dates", name, "where"), problems)
        elif not isinstance(spec, ColumnDate):
            others = {n: t for n, t in dates.items() if n != name}
            check(spec, ("dates", name), others)
    check(policy.retain_until, ("retain_until",), dates)
    for i, phase in enumerate(policy.phases):
        check(phase.due, ("phases", i, "due"), {**dates, RETAIN_UNTIL: ExprType.DATE})
    return problems


def _syntax(loaded: LoadedPolicy, text: str, path: PathKey, problems: list[Problem]) -> None:
    try:
        parse(text)
    except ExprError as exc:
        where = loaded.document.text_location(path, exc.line or 1, exc.column or 1)
        problems.append(Problem(where, exc.message, exc.hint))
