"""Evaluate an expression in Python exactly as PostgreSQL evaluates the compiled SQL.

Dates are computed on an unbounded proleptic Gregorian day count, so an intermediate value
beyond year 9999 (say `fin + 10 years` with the sentinel `fin = 9999-12-31`) still compares
like it does in PostgreSQL. Like PostgreSQL, `date ± interval` goes through a timestamp:
months first (clamped to the end of the month), then days, and a result outside the
timestamp range (4714 BC to 294276 AD) is an error. A final date outside Python's years
1..9999 cannot be returned and is an error too; PostgreSQL returns it, and psycopg refuses to
load it, so both sides fail on the same inputs.

NULL is `None`; three-valued logic follows SQL. `and`, `or`, `if` and `coalesce` stop as soon
as the result is known; PostgreSQL may evaluate (or constant-fold) more, so an expression
that raises an error in a branch not taken can fail in SQL and not here.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, assert_never

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
    Pos,
    TextLit,
    Today,
    Unit,
)
from retention.policy.expr.types import Interval


@dataclass(frozen=True, order=True, slots=True)
class _Day:
    """A date as a day count from 1970-01-01 (proleptic Gregorian, any year)."""

    n: int


_Value = _Day | Interval | bool | int | Decimal | float | str | None
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_INT32 = range(-(2**31), 2**31)
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def evaluate(expr: Expr, values: Mapping[str, object], today: date) -> object:
    """The value of `expr` (a `date`, `Interval`, `bool`, number, `str` or None).

    `values` maps each name (`"x"` or `"table.x"`) to a Python value: `datetime.date` for
    dates (not `datetime`), `int`/`Decimal`/`float`, `str`, `bool` or None. `today` is the
    value of `today`. Raises ExprError for a missing or unusable value, an operation on the
    wrong types (when `expr` was not type-checked) or a date out of range.
    """
    result = _Evaluator(values, _day_of(today, "today", expr.pos)).eval(expr)
    if isinstance(result, _Day):
        return _to_date(result, expr.pos)
    return result


class _Evaluator:
    def __init__(self, values: Mapping[str, object], today: _Day) -> None:
        self.values = values
        self.today = today

    def eval(self, expr: Expr) -> _Value:
        match expr:
            case TextLit() | NumberLit() | BoolLit():
                return expr.value
            case NullLit():
                return None
            case DateLit():
                return _Day(expr.value.toordinal() - _EPOCH_ORDINAL)
            case Today():
                return self.today
            case IntervalLit():
                return _interval_of(expr)
            case Name():
                return self.name(expr)
            case Compare():
                return _compare(expr.op, self.eval(expr.left), self.eval(expr.right), expr.pos)
            case Arith():
                return _arith(expr.op, self.eval(expr.left), self.eval(expr.right), expr.pos)
            case And() | Or() | Not():
                return self.logic(expr)
            case IsNull():
                return (self.eval(expr.operand) is None) != expr.negated
            case InList():
                return self.in_list(expr)
            case If():
                cond = _truth(self.eval(expr.cond), expr.cond.pos)
                return self.eval(expr.then if cond is True else expr.else_)
            case Call():
                return self.call(expr)
            case _:
                assert_never(expr)

    def name(self, expr: Name) -> _Value:
        if expr.key not in self.values:
            raise ExprError.at(expr.pos, f"no value was given for '{expr.key}'")
        return _from_python(self.values[expr.key], expr.key, expr.pos)

    def logic(self, expr: And | Or | Not) -> bool | None:
        if isinstance(expr, Not):
            value = _truth(self.eval(expr.operand), expr.operand.pos)
            return None if value is None else not value
        decisive = isinstance(expr, Or)  # `true or ...` is true, `false and ...` is false
        left = _truth(self.eval(expr.left), expr.left.pos)
        if left is decisive:
            return decisive
        right = _truth(self.eval(expr.right), expr.right.pos)
        if right is decisive:
            return decisive
        return None if left is None or right is None else not decisive

    def in_list(self, expr: InList) -> bool | None:
        value = self.eval(expr.operand)
        if value is None:
            return None
        unknown = False
        for item in expr.items:
            found = _compare("=", value, self.eval(item), item.pos)
            if found is True:
                return not expr.negated
            unknown = unknown or found is None
        return None if unknown else expr.negated

    def call(self, expr: Call) -> _Value:
        if expr.func == "coalesce":
            for arg in expr.args:
                value = self.eval(arg)
                if value is not None:
                    return value
            return None
        values = [v for v in (self.eval(arg) for arg in expr.args) if v is not None]
        if not values:
            return None
        best, *others = _orderable(values, expr.pos, f"{expr.func}()")
        better = _COMPARE[">" if expr.func == "greatest" else "<"]
        for value in others:
            best = value if better(value, best) else best
        return best


# -- values ------------------------------------------------------------------------------
def _from_python(value: object, key: str, pos: Pos) -> _Value:
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, date):
        return _day_of(value, key, pos)
    if isinstance(value, Decimal | float):
        if _is_nan(value):  # PostgreSQL's NaN equals itself, Python's does not
            raise ExprError.at(pos, f"the value of '{key}' is not a number (NaN)")
        return value
    raise ExprError.at(pos, f"the value of '{key}' has an unusable type {type(value).__name__}")


def _is_nan(value: Decimal | float) -> bool:
    return value.is_nan() if isinstance(value, Decimal) else math.isnan(value)


def _day_of(value: date, key: str, pos: Pos) -> _Day:
    if isinstance(value, datetime):
        raise ExprError.at(
            pos,
            f"the value of '{key}' is a datetime; a date is needed",
            "read timestamp columns as dates (column::date) so SQL and Python agree",
        )
    return _Day(value.toordinal() - _EPOCH_ORDINAL)


def _to_date(day: _Day, pos: Pos) -> date:
    ordinal = day.n + _EPOCH_ORDINAL
    if not 1 <= ordinal <= date.max.toordinal():
        year = _civil_from_days(day.n)[0]
        shown = str(year) if year > 0 else f"{1 - year} BC"
        raise ExprError.at(
            pos,
            f"the resulting date (year {shown}) is outside the years 1 to 9999",
            "check the dates in the data (a sentinel such as 9999-12-31 plus a duration)",
        )
    return date.fromordinal(ordinal)


def _kind(value: _Value) -> str:
    if isinstance(value, bool):
        return "a condition"
    if isinstance(value, _Day):
        return "a date"
    if isinstance(value, Interval):
        return "a duration"
    if isinstance(value, str):
        return "a text"
    return "a number"


def _truth(value: _Value, pos: Pos) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ExprError.at(pos, f"a condition (true/false) is needed, not {_kind(value)}")


# -- comparisons ---------------------------------------------------------------------------
def _compare(op: str, left: _Value, right: _Value, pos: Pos) -> bool | None:
    if left is None or right is None:
        return None
    if op in ("=", "<>"):
        pair = _equatable([left, right], pos, f"'{op}'")
    else:
        pair = _orderable([left, right], pos, f"'{op}'")
    return _COMPARE[op](pair[0], pair[1])


def _same_kind(values: Sequence[_Value], pos: Pos, what: str) -> str:
    kinds = {_kind(v) for v in values}
    if len(kinds) > 1:
        raise ExprError.at(pos, f"{what} cannot mix {' and '.join(sorted(kinds))}")
    return kinds.pop()


def _equatable(values: Sequence[_Value], pos: Pos, what: str) -> list[_Value]:
    if _same_kind(values, pos, what) == "a duration":
        raise ExprError.at(pos, f"{what} cannot compare durations")
    return _as_floats(values)


def _orderable(values: Sequence[_Value], pos: Pos, what: str) -> list[_Value]:
    kind = _same_kind(values, pos, what)
    if kind not in ("a date", "a number"):
        raise ExprError.at(pos, f"{what} cannot order {kind}")
    return _as_floats(values)


def _as_floats(values: Sequence[_Value]) -> list[_Value]:
    """PostgreSQL compares a float with a numeric as two floats."""
    if any(isinstance(v, float) for v in values):
        return [float(v) if isinstance(v, int | Decimal) else v for v in values]
    return list(values)


# -- date arithmetic -------------------------------------------------------------------------
def _interval_of(expr: IntervalLit) -> Interval:
    if expr.unit is Unit.YEARS:
        return Interval(months=12 * expr.amount)
    if expr.unit is Unit.MONTHS:
        return Interval(months=expr.amount)
    return Interval(days=(7 if expr.unit is Unit.WEEKS else 1) * expr.amount)


def _arith(op: str, left: _Value, right: _Value, pos: Pos) -> _Value:
    if left is None or right is None:
        return None
    if isinstance(left, _Day) and isinstance(right, Interval):
        return _add_interval(left, right if op == "+" else right.negated(), pos)
    if isinstance(left, Interval) and isinstance(right, _Day) and op == "+":
        return _add_interval(right, left, pos)
    if isinstance(left, Interval) and isinstance(right, Interval):
        sign = 1 if op == "+" else -1
        return _checked(
            Interval(left.months + sign * right.months, left.days + sign * right.days), pos
        )
    verb = "add" if op == "+" else "subtract"
    raise ExprError.at(pos, f"cannot {verb} {_kind(left)} and {_kind(right)}")


def _checked(interval: Interval, pos: Pos) -> Interval:
    if interval.months not in _INT32 or interval.days not in _INT32:
        raise ExprError.at(pos, "the duration is out of range")
    return interval


def _add_interval(day: _Day, interval: Interval, pos: Pos) -> _Day:
    """PostgreSQL's `timestamp + interval`: months (clamped to month end), then days."""
    n = day.n
    if interval.months:
        year, month, dom = _civil_from_days(n)
        year, month0 = divmod(year * 12 + month - 1 + interval.months, 12)
        n = _days_from_civil(year, month0 + 1, min(dom, _days_in_month(year, month0 + 1)))
        _check_timestamp(n, pos)
    if interval.days:
        n += interval.days
        _check_timestamp(n, pos)
    return _Day(n)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 (H. Hinnant's algorithm; astronomical years, any sign)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(n: int) -> tuple[int, int, int]:
    """Inverse of `_days_from_civil`."""
    n += 719468
    era = n // 146097
    doe = n - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


# PostgreSQL timestamps run from 4714-11-24 BC (astronomical year -4713) to 294276-12-31.
_TIMESTAMP_MIN = _days_from_civil(-4713, 11, 24)
_TIMESTAMP_END = _days_from_civil(294277, 1, 1)


def _check_timestamp(n: int, pos: Pos) -> None:
    if not _TIMESTAMP_MIN <= n < _TIMESTAMP_END:
        raise ExprError.at(pos, "the date is out of range (timestamp out of range)")
