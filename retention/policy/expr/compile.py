"""Expression to SQL: a `Composed` where every value is a bound parameter.

The caller decides how names become SQL (`resolve`), what `today` is, and for which engine
(`dialect`, a `retention.engines.clock.ClockSQL`; PostgreSQL when none is given). Literals
become named placeholders typed by the engine (`%(p1)s::date`, `CAST(%(p1)s AS DATE)`);
only keywords and operators from a fixed list are written as SQL text. What every engine reads
alike (CASE, AND/OR/NOT, comparisons, IN, COALESCE) is written here; dates, durations and
`greatest`/`least` are the engine's.

The expression must have passed `typecheck`: the SQL shape of `a + b` (date arithmetic, cast
back to date, or interval arithmetic) is decided from the tree, names being never intervals.
A sub-expression that is always null (`null`, `d + null`, `coalesce(null)`...) compiles to a
bare `NULL`, which the engine types from its context.

Each sub-expression compiles to a `Term`: its SQL and, on an engine that cannot compute some
values PostgreSQL computes (MariaDB past 9999-12-31), a condition telling when it could not.
`compile_sql` turns such a value into NULL, so that a clock judges its subject undeterminable;
`compile_term` gives the condition apart (an aggregate marks its row unknown with it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import assert_never

from retention.engines import sql
from retention.engines.clock import ClockSQL, Term, or_postgresql
from retention.engines.sql import Params
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
_NULL_TERM = Term(_NULL)
_BIGINT = range(-(2**63), 2**63)

# how a name is read: its SQL, or a term (a named expression compiled with its condition)
Resolve = Callable[[Name], sql.Composable | Term]


def compile_sql(
    expr: Expr,
    resolve: Resolve,
    params: Params,
    today: sql.Composable,
    dialect: ClockSQL | None = None,
) -> sql.Composed:
    """SQL computing `expr`; `resolve` turns each name into an operand (an identifier, an
    expression in parentheses, or a `Term`), `today` is the SQL of the evaluation date, and
    literal values are bound in `params`. `expr` must have passed `typecheck`. A value the
    engine could not compute is NULL. A duration needs an engine with an interval type (or
    `compile_term`).
    """
    term = compile_term(expr, resolve, params, today, dialect)
    if term.days is not None:
        raise ValueError("this engine has no interval type: compile a duration with compile_term")
    result = (
        term.sql
        if term.unknown is None
        else sql.SQL("(CASE WHEN {} THEN NULL ELSE {} END)").format(term.unknown, term.sql)
    )
    return result if isinstance(result, sql.Composed) else sql.Composed([result])


def compile_term(
    expr: Expr,
    resolve: Resolve,
    params: Params,
    today: sql.Composable,
    dialect: ClockSQL | None = None,
) -> Term:
    """As `compile_sql`, the value and the condition under which it could not be computed
    apart (`Term.unknown`, None when it always can)."""
    return _Compiler(resolve, params, today, or_postgresql(dialect)).compile(expr)


class _Compiler:
    def __init__(
        self, resolve: Resolve, params: Params, today: sql.Composable, dialect: ClockSQL
    ) -> None:
        self.resolve = resolve
        self.params = params
        self.today = today
        self.dialect = dialect

    def compile(self, expr: Expr) -> Term:
        if _is_null(expr):
            return _NULL_TERM
        match expr:
            case TextLit() | NumberLit() | BoolLit() | DateLit() | IntervalLit():
                return self.literal(expr)
            case NullLit():  # pragma: no cover - caught by _is_null above
                return _NULL_TERM
            case Today():
                return Term(_operand(self.today))
            case Name():
                return self.name(expr)
            case Compare():
                return self.compare(expr)
            case Arith():
                return self.arith(expr)
            case And():
                return self.binary(expr.left, sql.SQL("AND"), expr.right)
            case Or():
                return self.binary(expr.left, sql.SQL("OR"), expr.right)
            case Not():
                operand = self.compile(expr.operand)
                return Term(sql.SQL("(NOT {})").format(operand.sql), unknown=operand.unknown)
            case IsNull():
                operand = self.compile(expr.operand)
                test = sql.SQL("IS NOT NULL" if expr.negated else "IS NULL")
                return Term(sql.SQL("({} {})").format(operand.sql, test), unknown=operand.unknown)
            case InList():
                return self.in_list(expr)
            case If():
                return self.choice(expr)
            case Call():
                return self.call(expr)
            case _:
                assert_never(expr)

    def name(self, expr: Name) -> Term:
        resolved = self.resolve(expr)
        if isinstance(resolved, Term):
            return Term(_operand(resolved.sql), resolved.days, resolved.unknown)
        return Term(_operand(resolved))

    def literal(self, expr: TextLit | NumberLit | BoolLit | DateLit | IntervalLit) -> Term:
        match expr:
            case TextLit(value=value):
                return Term(self.dialect.bind(self.params, value, "text"))
            case NumberLit(value=value):
                fits = isinstance(value, int) and value in _BIGINT
                return Term(self.dialect.bind(self.params, value, "bigint" if fits else "numeric"))
            case BoolLit(value=value):
                return Term(self.dialect.bind(self.params, value, "boolean"))
            case DateLit(value=value):
                return Term(self.dialect.bind(self.params, value, "date"))
            case IntervalLit(amount=amount, unit=unit):
                return self.dialect.interval(self.params, unit.value, amount)

    def compare(self, expr: Compare) -> Term:
        """A column compared with a text literal takes the literal in the column's own type
        (`annule = '0'` on a char(1) column): the planner can then use the column's statistics
        and indexes, which a cast on the column side would hide."""
        left, right = expr.left, expr.right
        if isinstance(left, Name) and isinstance(right, TextLit):
            column = self.compile(left)
            value = sql.SQL("({} {} {})").format(
                column.sql, sql.SQL(expr.op), self.params.add(right.value)
            )
            return Term(value, unknown=column.unknown)
        if isinstance(right, Name) and isinstance(left, TextLit):
            literal = self.params.add(left.value)
            column = self.compile(right)
            value = sql.SQL("({} {} {})").format(literal, sql.SQL(expr.op), column.sql)
            return Term(value, unknown=column.unknown)
        return self.binary(left, sql.SQL(expr.op), right)

    def binary(self, left: Expr, op: sql.SQL, right: Expr) -> Term:
        a, b = self.compile(left), self.compile(right)
        return Term(sql.SQL("({} {} {})").format(a.sql, op, b.sql), unknown=_either(a, b))

    def arith(self, expr: Arith) -> Term:
        left, right = self.compile(expr.left), self.compile(expr.right)
        left_iv, right_iv = _is_interval(expr.left), _is_interval(expr.right)
        if left_iv and right_iv:
            result = self.dialect.combine(left, expr.op, right)
        elif right_iv:
            result = self.dialect.shift(left, expr.op, right, interval_first=False)
        elif left_iv and expr.op == "+":
            result = self.dialect.shift(right, expr.op, left, interval_first=True)
        else:
            raise ExprError.at(
                expr.pos, "this arithmetic cannot be compiled; was the expression type-checked?"
            )
        return Term(result.sql, result.days, _either(left, right, result))

    def in_list(self, expr: InList) -> Term:
        column = isinstance(expr.operand, Name)
        items = [  # before the operand: its parameters come after the items'
            Term(self.params.add(item.value))
            if column and isinstance(item, TextLit)
            else self.compile(item)
            for item in expr.items
        ]
        operand = self.compile(expr.operand)
        test = sql.SQL("NOT IN" if expr.negated else "IN")
        value = sql.SQL("({} {} ({}))").format(
            operand.sql, test, sql.SQL(", ").join(item.sql for item in items)
        )
        return Term(value, unknown=_either(operand, *items))

    def choice(self, expr: If) -> Term:
        cond, then, else_ = (self.compile(e) for e in (expr.cond, expr.then, expr.else_))
        case = sql.SQL("CASE WHEN {} THEN {} ELSE {} END")
        days = None
        if then.days is not None or else_.days is not None:
            days = case.format(cond.sql, then.days or _NULL, else_.days or _NULL)
        return Term(case.format(cond.sql, then.sql, else_.sql), days, _either(cond, then, else_))

    def call(self, expr: Call) -> Term:
        args = [self.compile(arg) for arg in expr.args]
        unknown = _either(*args)
        if expr.func != "coalesce":
            return Term(self.dialect.extreme(expr.func, [a.sql for a in args]), unknown=unknown)
        # a duration's months and days are NULL together: both pick the same argument
        days = None
        if any(a.days is not None for a in args):
            days = _coalesce([a.days or _NULL for a in args])
        return Term(_coalesce([a.sql for a in args]), days, unknown)


def _coalesce(args: list[sql.Composable]) -> sql.Composable:
    return sql.SQL("COALESCE({})").format(sql.SQL(", ").join(args))


def _either(*terms: Term) -> sql.Composable | None:
    """The condition under which one of `terms` could not be computed (None: never)."""
    unknown = [t.unknown for t in terms if t.unknown is not None]
    if not unknown:
        return None
    if len(unknown) == 1:
        return unknown[0]
    return sql.SQL("({})").format(sql.SQL(" OR ").join(unknown))


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
