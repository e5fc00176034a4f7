"""Expression to SQL: a `psycopg.sql.Composed` where every value is a bound parameter.

The caller decides how names become SQL (`resolve`) and what `today` is. Literals become
named placeholders with an explicit cast (`%(p1)s::date`, `%(p2)s::text`, interval amounts
`%(p3)s::int`); only keywords and operators from a fixed list are written as SQL text.

The expression must have passed `typecheck`: the SQL shape of `a + b` (date arithmetic, cast
back to date, or interval arithmetic) is decided from the tree, names being never intervals.
A sub-expression that is always null (`null`, `d + null`, `coalesce(null)`...) compiles to a
bare `NULL`, which PostgreSQL types from its context.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import assert_never

from psycopg.adapt import PyFormat

from retention.engines import sql
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
)

_NULL = sql.SQL("NULL")
_PREFIX = re.compile(r"[A-Za-z_]([A-Za-z0-9_]*[A-Za-z_])?")
_BIGINT = range(-(2**63), 2**63)
_FUNCS = {
    "greatest": sql.SQL("GREATEST"),
    "least": sql.SQL("LEAST"),
    "coalesce": sql.SQL("COALESCE"),
}


class Params:
    """Values for named placeholders `%(p1)s`, `%(p2)s`... allocated in order.

    `prefix` (letters, digits, `_`, not ending with a digit) keeps the names of several
    collections apart: `Params("c")` gives `c1`, `c2`...
    """

    def __init__(self, prefix: str = "p") -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"invalid placeholder prefix {prefix!r}")
        self.prefix = prefix
        self._values: dict[str, object] = {}

    def add(self, value: object, *, binary: bool = False) -> sql.Composable:
        """Bind `value` to a new placeholder and return it (`binary`: sent in binary format,
        e.g. arrays of thousands of keys, which the text format escapes element by element)."""
        name = f"{self.prefix}{len(self._values) + 1}"
        self._values[name] = value
        return sql.Placeholder(name, PyFormat.BINARY if binary else PyFormat.AUTO)

    @property
    def values(self) -> dict[str, object]:
        """The bound values by placeholder name (a copy), to pass to `execute`."""
        return dict(self._values)


def compile_sql(
    expr: Expr,
    resolve: Callable[[Name], sql.Composable],
    params: Params,
    today: sql.Composable,
) -> sql.Composed:
    """SQL computing `expr`; `resolve` turns each name into an operand (an identifier, or an
    expression in parentheses), `today` is the SQL of the evaluation date, and literal values
    are bound in `params`. `expr` must have passed `typecheck`.
    """
    result = _Compiler(resolve, params, today).compile(expr)
    return result if isinstance(result, sql.Composed) else sql.Composed([result])


class _Compiler:
    def __init__(
        self, resolve: Callable[[Name], sql.Composable], params: Params, today: sql.Composable
    ) -> None:
        self.resolve = resolve
        self.params = params
        self.today = today

    def compile(self, expr: Expr) -> sql.Composable:
        if _is_null(expr):
            return _NULL
        match expr:
            case TextLit() | NumberLit() | BoolLit() | DateLit() | IntervalLit():
                return self.literal(expr)
            case NullLit():  # pragma: no cover - caught by _is_null above
                return _NULL
            case Today():
                return _operand(self.today)
            case Name():
                return _operand(self.resolve(expr))
            case Compare():
                return self.compare(expr)
            case Arith():
                return self.arith(expr)
            case And():
                return self.binary(expr.left, sql.SQL("AND"), expr.right)
            case Or():
                return self.binary(expr.left, sql.SQL("OR"), expr.right)
            case Not():
                return sql.SQL("(NOT {})").format(self.compile(expr.operand))
            case IsNull():
                test = sql.SQL("IS NOT NULL" if expr.negated else "IS NULL")
                return sql.SQL("({} {})").format(self.compile(expr.operand), test)
            case InList():
                return self.in_list(expr)
            case If():
                return sql.SQL("CASE WHEN {} THEN {} ELSE {} END").format(
                    self.compile(expr.cond), self.compile(expr.then), self.compile(expr.else_)
                )
            case Call():
                args = sql.SQL(", ").join(self.compile(arg) for arg in expr.args)
                return sql.SQL("{}({})").format(_FUNCS[expr.func], args)
            case _:
                assert_never(expr)

    def literal(self, expr: TextLit | NumberLit | BoolLit | DateLit | IntervalLit) -> sql.Composed:
        match expr:
            case TextLit(value=value):
                return self.bind(value, "text")
            case NumberLit(value=value):
                fits = isinstance(value, int) and value in _BIGINT
                return self.bind(value, "bigint" if fits else "numeric")
            case BoolLit(value=value):
                return self.bind(value, "boolean")
            case DateLit(value=value):
                return self.bind(value, "date")
            case IntervalLit(amount=amount, unit=unit):
                return sql.SQL("make_interval({} => {})").format(
                    sql.SQL(unit.value), self.bind(amount, "int")
                )

    def bind(self, value: object, type_: str) -> sql.Composed:
        return sql.SQL("{}::{}").format(self.params.add(value), sql.SQL(type_))

    def compare(self, expr: Compare) -> sql.Composed:
        """A column compared with a text literal takes the literal in the column's own type
        (`annule = '0'` on a char(1) column): the planner can then use the column's statistics
        and indexes, which a `::text` cast on the column side would hide."""
        left, right = expr.left, expr.right
        if isinstance(left, Name) and isinstance(right, TextLit):
            return sql.SQL("({} {} {})").format(
                self.compile(left), sql.SQL(expr.op), self.params.add(right.value)
            )
        if isinstance(right, Name) and isinstance(left, TextLit):
            return sql.SQL("({} {} {})").format(
                self.params.add(left.value), sql.SQL(expr.op), self.compile(right)
            )
        return self.binary(left, sql.SQL(expr.op), right)

    def binary(self, left: Expr, op: sql.SQL, right: Expr) -> sql.Composed:
        return sql.SQL("({} {} {})").format(self.compile(left), op, self.compile(right))

    def arith(self, expr: Arith) -> sql.Composed:
        left, right = _is_interval(expr.left), _is_interval(expr.right)
        op = sql.SQL(expr.op)
        if left and right:
            return self.binary(expr.left, op, expr.right)
        if right or (left and expr.op == "+"):
            return sql.SQL("{}::date").format(self.binary(expr.left, op, expr.right))
        raise ExprError.at(
            expr.pos, "this arithmetic cannot be compiled; was the expression type-checked?"
        )

    def in_list(self, expr: InList) -> sql.Composed:
        column = isinstance(expr.operand, Name)
        items = sql.SQL(", ").join(
            self.params.add(item.value)
            if column and isinstance(item, TextLit)
            else self.compile(item)
            for item in expr.items
        )
        test = sql.SQL("NOT IN" if expr.negated else "IN")
        return sql.SQL("({} {} ({}))").format(self.compile(expr.operand), test, items)


def _operand(value: sql.Composable) -> sql.Composable:
    """`value`, in parentheses unless it is a single identifier or placeholder."""
    if isinstance(value, sql.Identifier | sql.Placeholder):
        return value
    return sql.SQL("({})").format(value)


def _is_null(expr: Expr) -> bool:
    """True when `expr` is null whatever the data (its type is NULL)."""
    match expr:
        case NullLit():
            return True
        case Arith(left=left, right=right):
            return _is_null(left) or _is_null(right)
        case If(then=then, else_=else_):
            return _is_null(then) and _is_null(else_)
        case Call(args=args):
            return all(_is_null(arg) for arg in args)
        case _:
            return False


def _is_interval(expr: Expr) -> bool:
    """True when `expr` is an interval (names never are)."""
    match expr:
        case IntervalLit():
            return True
        case Arith(left=left, right=right):
            return _is_interval(left) and _is_interval(right)
        case If(then=then, else_=else_):
            return _is_interval(then) or _is_interval(else_)
        case Call(func="coalesce", args=args):
            return any(_is_interval(arg) for arg in args)
        case _:
            return False
