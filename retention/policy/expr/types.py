"""Static types of expressions: what each operator accepts, checked before anything runs.

The rules are deliberately narrow, so that the SQL and Python readings of an expression can
never disagree: arithmetic is only date ± interval and interval ± interval; `<`, `>`... and
`greatest`/`least` only order dates and numbers (text order depends on the collation); intervals
are never compared (PostgreSQL equates `1 month` with `30 days`); names are never intervals
(durations are written in the policy, not read from the data).
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import assert_never

from retention.policy.expr.nodes import (
    And,
    Arith,
    BoolLit,
    Call,
    Compare,
    DateLit,
    Expr,
    ExprError,
    If,
    InList,
    IntervalLit,
    IsNull,
    Name,
    Not,
    NullLit,
    NumberLit,
    Or,
    TextLit,
    Today,
    quote_ident,
)


class ExprType(enum.Enum):
    """The type of an expression; NULL (the `null` literal) is compatible with every type."""

    DATE = "date"
    INTERVAL = "interval"
    BOOLEAN = "boolean"
    NUMBER = "number"
    TEXT = "text"
    NULL = "null"

    @property
    def label(self) -> str:
        """How the type is named in messages."""
        return _LABELS[self]


_LABELS = {
    ExprType.DATE: "a date",
    ExprType.INTERVAL: "a duration",
    ExprType.BOOLEAN: "a condition (true/false)",
    ExprType.NUMBER: "a number",
    ExprType.TEXT: "a text",
    ExprType.NULL: "null",
}
_ORDERED = frozenset([ExprType.DATE, ExprType.NUMBER])
_EQUATABLE = frozenset([ExprType.DATE, ExprType.NUMBER, ExprType.TEXT, ExprType.BOOLEAN])


@dataclass(frozen=True, slots=True)
class Interval:
    """An interval value as PostgreSQL keeps it: months (years x 12) and days (weeks x 7)."""

    months: int = 0
    days: int = 0

    def negated(self) -> Interval:
        """The opposite interval (what `date - interval` adds)."""
        return Interval(-self.months, -self.days)


def typecheck(expr: Expr, names: Mapping[str, ExprType]) -> ExprType:
    """The type of `expr`, given the type of each name (`"x"` or `"table.x"`).

    Raises ExprError at the offending node for an unknown name or an ill-typed operation.
    """
    return _Checker(names).check(expr)


class _Checker:
    def __init__(self, names: Mapping[str, ExprType]) -> None:
        self.names = names

    def check(self, expr: Expr) -> ExprType:
        match expr:
            case TextLit():
                return ExprType.TEXT
            case NumberLit():
                return ExprType.NUMBER
            case BoolLit():
                return ExprType.BOOLEAN
            case NullLit():
                return ExprType.NULL
            case DateLit() | Today():
                return ExprType.DATE
            case IntervalLit():
                return ExprType.INTERVAL
            case Name():
                return self.name(expr)
            case Compare():
                return self.compare(expr)
            case Arith():
                return self.arith(expr)
            case And() | Or():
                return self.logic(expr)
            case Not():
                self.condition(expr.operand, "'not'")
                return ExprType.BOOLEAN
            case IsNull():
                self.check(expr.operand)
                return ExprType.BOOLEAN
            case InList():
                return self.in_list(expr)
            case If():
                return self.if_(expr)
            case Call():
                return self.call(expr)
            case _:
                assert_never(expr)

    def name(self, expr: Name) -> ExprType:
        found = self.names.get(expr.key)
        if found is None:
            raise _unknown_name(expr, self.names)
        if found is ExprType.INTERVAL:
            raise ExprError.at(
                expr.pos,
                f"'{expr.key}' is an interval; durations must be written in the policy",
                "write the duration itself, e.g. 10 years",
            )
        return found

    def compare(self, expr: Compare) -> ExprType:
        left, right = self.check(expr.left), self.check(expr.right)
        kind = _unify(left, right)
        if kind is None:
            raise ExprError.at(
                expr.pos, f"cannot compare {left.label} with {right.label}", _compare_hint(left)
            )
        _check_comparable(expr, kind)
        return ExprType.BOOLEAN

    def arith(self, expr: Arith) -> ExprType:
        left, right = self.check(expr.left), self.check(expr.right)
        result = _ARITH.get((left, expr.op, right))
        if result is None:
            verb = "add" if expr.op == "+" else "subtract"
            raise ExprError.at(
                expr.pos,
                f"cannot {verb} {right.label} {'to' if expr.op == '+' else 'from'} {left.label}",
                "only a duration can be added to or subtracted from a date, "
                "e.g. naissance + 28 years; durations add up: 1 year + 6 months",
            )
        return result

    def logic(self, expr: And | Or) -> ExprType:
        word = "'and'" if isinstance(expr, And) else "'or'"
        self.condition(expr.left, word)
        self.condition(expr.right, word)
        return ExprType.BOOLEAN

    def condition(self, expr: Expr, where: str) -> None:
        kind = self.check(expr)
        if kind not in (ExprType.BOOLEAN, ExprType.NULL):
            raise ExprError.at(
                expr.pos,
                f"{where} needs a condition (true/false), not {kind.label}",
                "a condition is a comparison such as deces is not null or annule = '0'",
            )

    def in_list(self, expr: InList) -> ExprType:
        kind = self.check(expr.operand)
        for item in expr.items:
            item_kind = self.check(item)
            unified = _unify(kind, item_kind)
            if unified is None:
                raise ExprError.at(
                    item.pos,
                    f"cannot compare {kind.label} with {item_kind.label} in an 'in' list",
                    _compare_hint(kind),
                )
            kind = unified
        if kind not in (*_EQUATABLE, ExprType.NULL):
            raise ExprError.at(expr.pos, f"'in' cannot compare {kind.label}")
        return ExprType.BOOLEAN

    def if_(self, expr: If) -> ExprType:
        self.condition(expr.cond, "'if'")
        then, else_ = self.check(expr.then), self.check(expr.else_)
        kind = _unify(then, else_)
        if kind is None:
            raise ExprError.at(
                expr.pos,
                f"the branches of 'if' differ: {then.label} after 'then', "
                f"{else_.label} after 'else'",
                "both branches must give the same type (null fits any)",
            )
        return kind

    def call(self, expr: Call) -> ExprType:
        kind = ExprType.NULL
        for arg in expr.args:
            arg_kind = self.check(arg)
            unified = _unify(kind, arg_kind)
            if unified is None:
                raise ExprError.at(
                    arg.pos,
                    f"{expr.func}() mixes {kind.label} and {arg_kind.label}",
                    "all the arguments must have the same type (null fits any)",
                )
            kind = unified
        if expr.func != "coalesce" and kind not in (*_ORDERED, ExprType.NULL):
            raise ExprError.at(
                expr.pos,
                f"{expr.func}() cannot order {kind.label}",
                f"{expr.func}() works on dates and numbers",
            )
        return kind


def _unify(a: ExprType, b: ExprType) -> ExprType | None:
    """The common type of `a` and `b` (null fits any), or None."""
    if a is ExprType.NULL:
        return b
    if b is ExprType.NULL or a is b:
        return a
    return None


def _check_comparable(expr: Compare, kind: ExprType) -> None:
    if expr.op in ("=", "<>") and kind not in _EQUATABLE | {ExprType.NULL}:
        raise ExprError.at(
            expr.pos,
            f"durations cannot be compared with '{expr.op}'",
            "compare the dates they lead to instead, e.g. a + 1 year < b",
        )
    if expr.op not in ("=", "<>") and kind not in _ORDERED | {ExprType.NULL}:
        raise ExprError.at(
            expr.pos,
            f"'{expr.op}' cannot order {kind.label}",
            "'<', '<=', '>' and '>=' work on dates and numbers; "
            "text and conditions can only be compared with '=', '<>' or 'in'",
        )


def _compare_hint(kind: ExprType) -> str:
    if kind is ExprType.DATE:
        return "compare a date with a date: another date name, today, or date '2020-01-31'"
    if kind is ExprType.TEXT:
        return "text values are written in single quotes: 'X'"
    return "both sides must have the same type"


_DATE, _INTERVAL, _NULL = ExprType.DATE, ExprType.INTERVAL, ExprType.NULL
# (left, op, right) -> result; any other combination is an error
_ARITH: dict[tuple[ExprType, str, ExprType], ExprType] = {
    (_DATE, "+", _INTERVAL): _DATE,
    (_DATE, "-", _INTERVAL): _DATE,
    (_INTERVAL, "+", _DATE): _DATE,
    (_INTERVAL, "+", _INTERVAL): _INTERVAL,
    (_INTERVAL, "-", _INTERVAL): _INTERVAL,
    # with a null operand the result is null, typed when only one reading is possible
    (_DATE, "+", _NULL): _DATE,
    (_DATE, "-", _NULL): _DATE,
    (_NULL, "+", _DATE): _DATE,
    (_INTERVAL, "-", _NULL): _INTERVAL,
    (_INTERVAL, "+", _NULL): _NULL,  # date or interval
    (_NULL, "+", _INTERVAL): _NULL,
    (_NULL, "-", _INTERVAL): _NULL,
    (_NULL, "+", _NULL): _NULL,
    (_NULL, "-", _NULL): _NULL,
}


def _unknown_name(expr: Name, names: Mapping[str, ExprType]) -> ExprError:
    close = difflib.get_close_matches(expr.key, list(names), n=1)
    if close:
        message = f"unknown name '{expr.key}'; did you mean '{_written(close[0])}'?"
    else:
        message = f"unknown name '{expr.key}'"
    known = ", ".join(_written(key) for key in sorted(names)[:20])
    hint = f"known names: {known}" if known else "no names are available here"
    if expr.table is None and _needs_quotes(expr.name):
        hint = "text values are written in single quotes: 'X'; " + hint
    elif expr.table is None and expr.name.lower() in _UNIT_WORDS:
        hint = f"a duration is a number and its unit: 20 {expr.name}; " + hint
    elif expr.table is None and not close and ExprType.TEXT in names.values():
        hint = f"a text value is written in single quotes: '{expr.name}'; " + hint
    return ExprError.at(expr.pos, message, hint)


# the unit words of durations (policy/expr/parser.py), met as names when the number is missing
_UNIT_WORDS = frozenset(
    [
        "year",
        "years",
        "an",
        "ans",
        "month",
        "months",
        "mois",
        "week",
        "weeks",
        "semaine",
        "semaines",
        "day",
        "days",
        "jour",
        "jours",
    ]
)


def _written(key: str) -> str:
    table, dot, name = key.rpartition(".")
    return f"{quote_ident(table)}.{quote_ident(name)}" if dot else quote_ident(key)


def _needs_quotes(name: str) -> bool:
    """True for a name that can only have been written in double quotes, maybe meant as text."""
    return quote_ident(name).startswith('"')
