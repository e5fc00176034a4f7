"""Random well-typed expressions: Python's `evaluate` and the SQL of each engine always agree.

Hypothesis writes expressions as text over a few named values (dates around leap days and
month ends, sentinels at both ends of the calendar, nulls), checks they parse, type, print
back to the same tree, then evaluates them in Python and in SQL on one connection, on
PostgreSQL and on MariaDB (the `engine` fixture). Where MariaDB's calendar ends (9999-12-31,
where PostgreSQL goes on), its value is `unknown` (undeterminable), and only where a step of
the expression's date arithmetic does leave the years 1 to 9999. The boundary-day rule is
checked the same way: a due date is the last day kept, due from the day after.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from retention.engines import Connection, sql
from retention.engines.clock import ClockSQL, Term, ValueType, clock_sql
from retention.engines.mariadb.render import render as mariadb_render
from retention.engines.postgresql import raw
from retention.policy.expr import (
    Expr,
    ExprError,
    ExprType,
    Interval,
    Name,
    Params,
    compile_sql,
    evaluate,
    parse,
    to_text,
    typecheck,
)
from retention.policy.expr.compile import compile_term
from retention.policy.expr.nodes import Arith

D, IV, B, N, T = ExprType.DATE, ExprType.INTERVAL, ExprType.BOOLEAN, ExprType.NUMBER, ExprType.TEXT
NAMES: dict[str, ExprType] = {"d1": D, "d2": D, "d3": D, "t1": T, "n1": N, "b1": B}
SQL_TYPES: dict[ExprType, ValueType] = {D: "date", T: "text", N: "numeric", B: "boolean"}

EDGE_DATES = [
    date(2000, 2, 29),
    date(2024, 2, 29),
    date(2100, 2, 28),
    date(2021, 1, 31),
    date(2020, 1, 31),
    date(2021, 3, 31),
    date(2021, 4, 30),
    date(2020, 12, 31),
    date(1999, 12, 31),
]
SENTINELS = [date(9999, 12, 31), date(9999, 1, 31), date(1, 1, 1), date(1, 3, 1)]
UNITS = ["years", "year", "ans", "an", "months", "month", "mois", "weeks", "week",
         "semaines", "semaine", "days", "day", "jours", "jour"]  # fmt: skip
COMPARE_OPS = ["=", "<>", "!=", "<", "<=", ">", ">="]

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

dates = st.one_of(
    st.sampled_from(EDGE_DATES),
    st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
    st.sampled_from(SENTINELS),
)
date_texts = dates.map(lambda d: f"date '{d.isoformat()}'")


def _call(func: str, args: list[str]) -> str:
    return f"{func}({', '.join(args)})"


def _binary(
    left: st.SearchStrategy[str], op: str, right: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    return st.tuples(left, right).map(lambda lr: f"({lr[0]}) {op} ({lr[1]})")


def _if(kind: ExprType, depth: int) -> st.SearchStrategy[str]:
    return st.tuples(typed(B, depth - 1), typed(kind, depth - 1), typed(kind, depth - 1)).map(
        lambda c: f"if {c[0]} then {c[1]} else {c[2]}"
    )


def _calls(kind: ExprType, depth: int, funcs: list[str]) -> st.SearchStrategy[str]:
    args = st.lists(typed(kind, depth - 1), min_size=1, max_size=3)
    return st.tuples(st.sampled_from(funcs), args).map(lambda fa: _call(*fa))


def _leaves(kind: ExprType) -> st.SearchStrategy[str]:
    null = st.just("null")
    if kind is D:
        return st.one_of(st.sampled_from(["d1", "d2", "d3", "today"]), date_texts, null)
    if kind is IV:
        amounts = st.integers(min_value=0, max_value=40)
        return st.tuples(amounts, st.sampled_from(UNITS)).map(lambda au: f"{au[0]} {au[1]}")
    if kind is B:
        return st.sampled_from(["b1", "true", "false", "null", "TRUE"])
    if kind is N:
        return st.sampled_from(["n1", "0", "2", "-3", "2.5", "null"])
    return st.sampled_from(["t1", "'a'", "'b'", "'it''s'", "''", "null"])


@cache
def typed(kind: ExprType, depth: int) -> st.SearchStrategy[str]:
    """Text of a random expression of type `kind` (or NULL), at most `depth` levels deep."""
    if depth == 0:
        return _leaves(kind)
    composite = _composite(kind, depth)
    return st.one_of(_leaves(kind), composite, composite)


def _composite(kind: ExprType, depth: int) -> st.SearchStrategy[str]:
    def sub(kind: ExprType) -> st.SearchStrategy[str]:
        return typed(kind, depth - 1)

    if kind is D:
        return st.one_of(
            _binary(sub(D), "+", sub(IV)),
            _binary(sub(D), "-", sub(IV)),
            _binary(sub(IV), "+", sub(D)),
            _if(D, depth),
            _calls(D, depth, ["greatest", "least", "coalesce"]),
        )
    if kind is IV:
        return st.one_of(
            _binary(sub(IV), "+", sub(IV)), _binary(sub(IV), "-", sub(IV)), _if(IV, depth)
        )
    if kind is B:
        return _booleans(depth)
    funcs = ["greatest", "least", "coalesce"] if kind is N else ["coalesce"]
    return st.one_of(_if(kind, depth), _calls(kind, depth, funcs))


def _booleans(depth: int) -> st.SearchStrategy[str]:
    def sub(kind: ExprType) -> st.SearchStrategy[str]:
        return typed(kind, depth - 1)

    in_items = st.lists(st.one_of(date_texts, st.just("null"), st.just("today")), min_size=1)
    return st.one_of(
        st.sampled_from(COMPARE_OPS).flatmap(lambda op: _binary(sub(D), op, sub(D))),
        st.sampled_from(COMPARE_OPS).flatmap(lambda op: _binary(sub(N), op, sub(N))),
        st.sampled_from(["=", "<>"]).flatmap(lambda op: _binary(sub(T), op, sub(T))),
        st.sampled_from(["=", "<>"]).flatmap(lambda op: _binary(sub(B), op, sub(B))),
        st.tuples(sub(D), st.sampled_from(["is null", "is not null"])).map(
            lambda x: f"({x[0]}) {x[1]}"
        ),
        _binary(sub(B), "and", sub(B)),
        _binary(sub(B), "or", sub(B)),
        sub(B).map(lambda x: f"not ({x})"),
        st.tuples(sub(D), st.sampled_from(["in", "not in"]), in_items).map(
            lambda x: f"({x[0]}) {x[1]} ({', '.join(x[2])})"
        ),
        st.tuples(
            st.sampled_from(["in", "not in"]),
            st.sets(st.sampled_from(["'a'", "'b'", "'it''s'", "null"]), min_size=1),
        ).map(lambda x: f"t1 {x[0]} ({', '.join(sorted(x[1]))})"),
        _if(B, depth),
        _calls(B, depth, ["coalesce"]),
    )


values = st.fixed_dictionaries(
    {
        "d1": st.one_of(st.none(), dates),
        "d2": st.one_of(st.none(), dates),
        "d3": st.one_of(st.none(), dates),
        "t1": st.sampled_from([None, "a", "b", "it's", ""]),
        "n1": st.one_of(st.none(), st.integers(-5, 5), st.sampled_from([Decimal("2.50")])),
        "b1": st.sampled_from([None, True, False]),
    }
)
todays = st.one_of(st.sampled_from(EDGE_DATES), dates)
kinds = st.sampled_from([D, D, D, B, B, N, T, IV])


# -- the engines ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Engine:
    """An engine the clock runs on: its clock SQL, and a statement's first row."""

    name: str
    dialect: ClockSQL
    one: Callable[[sql.Composed, dict[str, object]], tuple[Any, ...]]
    render: Callable[[sql.Composable, dict[str, object]], str]


@pytest.fixture(params=["postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """PostgreSQL or MariaDB, each on a fresh database (fix_db, fix_mariadb) through the
    tool's own connection."""
    fixture = {"postgresql": "conn", "mariadb": "mariadb_conn"}[request.param]
    conn: Connection = request.getfixturevalue(fixture)

    def one(query: sql.Composed, params: dict[str, object]) -> tuple[Any, ...]:
        row = conn.execute(query, params).fetchone()
        assert row is not None
        return tuple(row)

    def render(query: sql.Composable, params: dict[str, object]) -> str:
        """The SQL text sent, placeholders left out."""
        if request.param == "postgresql":
            return re.sub(r"%\(\w+\)s", "", query.as_string(raw(conn)))
        return mariadb_render(query, params).text.replace("?", "")

    return Engine(request.param, clock_sql(conn), one, render)


# -- one expression in SQL ------------------------------------------------------------------------
@dataclass(frozen=True)
class Compiled:
    term: Term
    params: Params


def _compile(engine: Engine, text: str, row: dict[str, Any], today: date) -> Compiled:
    params = Params()
    dialect = engine.dialect

    def resolve(name: Name) -> sql.Composable:
        return dialect.bind(params, row[name.key], SQL_TYPES[NAMES[name.key]])

    term = compile_term(parse(text), resolve, params, dialect.bind(params, today, "date"), dialect)
    return Compiled(term, params)


def _run_in_sql(engine: Engine, text: str, row: dict[str, Any], today: date) -> tuple[object, bool]:
    """The value of `text` in SQL, and whether the engine could not compute it (`unknown`)."""
    compiled = _compile(engine, text, row, today)
    term = compiled.term
    value = term.sql
    _assert_no_inlined_value(engine, engine.render(value, compiled.params.values))
    unknown = sql.SQL(", {}").format(term.unknown) if term.unknown is not None else sql.SQL("")
    interval = typecheck(parse(text), NAMES) is IV
    if interval and engine.name == "postgresql":
        query = sql.SQL(
            "SELECT (extract(year FROM x) * 12 + extract(month FROM x))::int, "
            "extract(day FROM x)::int{} FROM (SELECT {} AS x) AS v"
        ).format(unknown, value)
    elif interval:
        query = sql.SQL("SELECT {}, {}{}").format(value, term.days or sql.SQL("NULL"), unknown)
    elif term.unknown is not None:
        # NULL when it could not be computed, as the tool reads it (compile.py): MySQL's value
        # there may be a date of year 0, which no driver reads (MariaDB's is NULL)
        query = sql.SQL("SELECT CASE WHEN {u} THEN NULL ELSE {v} END{}").format(
            unknown, u=term.unknown, v=value
        )
    else:
        query = sql.SQL("SELECT {}{}").format(value, unknown)
    result = engine.one(query, compiled.params.values)
    could_not = bool(result[-1]) if term.unknown is not None else False
    if interval:
        months, days = result[0], result[1]
        return (None if months is None else Interval(int(months), int(days))), could_not
    if typecheck(parse(text), NAMES) is B and isinstance(result[0], int):  # MariaDB's 1/0
        return bool(result[0]), could_not
    return result[0], could_not


# the engine's own constants: MariaDB's DECIMAL(65, 30) cast, its year-0 and zero-date tests
_CONSTANTS = {"postgresql": r"$^", "mariadb": r"DECIMAL\(65, 30\)|\b0\b"}


def _assert_no_inlined_value(engine: Engine, text: str) -> None:
    """Apart from placeholders (and the engine's constants), the SQL holds no digit and no
    quote: no value was inlined."""
    bare = re.sub(_CONSTANTS[engine.name], "", text)
    assert not re.search(r"[0-9'\"]", bare), text


def _python(text: str, row: dict[str, Any], today: date) -> object:
    try:
        return evaluate(parse(text), row, today)
    except ExprError as exc:
        assert "outside the years 1 to 9999" in exc.message
        return "out of range"


def _in_sql(engine: Engine, text: str, row: dict[str, Any], today: date) -> tuple[object, bool]:
    try:
        return _run_in_sql(engine, text, row, today)
    except psycopg.DataError as exc:  # PostgreSQL computed it, psycopg cannot load it
        assert "year 10K" in str(exc) or "before year 1" in str(exc), exc
        return "out of range", False


def _leaves_the_calendar(expr: Expr, row: dict[str, Any], today: date) -> bool:
    """Whether a step of date arithmetic somewhere in `expr` (whether or not its branch is
    taken) leaves the years 1 to 9999: by its months, then by its days."""
    for node in expr.walk():
        if not isinstance(node, Arith):
            continue
        try:
            left, right = evaluate(node.left, row, today), evaluate(node.right, row, today)
        except ExprError:  # the operand's own arithmetic left the calendar
            return True
        day, interval = (left, right) if isinstance(right, Interval) else (right, left)
        if not isinstance(day, date) or not isinstance(interval, Interval):
            continue
        sign = -1 if node.op == "-" else 1
        year, month0 = divmod(day.year * 12 + day.month - 1 + sign * interval.months, 12)
        if not 1 <= year <= 9999:
            return True
        dom = min(day.day, calendar.monthrange(year, month0 + 1)[1])
        ordinal = date(year, month0 + 1, dom).toordinal() + sign * interval.days
        if not 1 <= ordinal <= date.max.toordinal():
            return True
    return False


@SETTINGS
@given(kind=kinds, data=st.data(), row=values, today=todays)
def test_python_and_sql_agree(
    engine: Engine,
    kind: ExprType,
    data: st.DataObject,
    row: dict[str, Any],
    today: date,
) -> None:
    text = data.draw(typed(kind, 3), label="expression")
    expr = parse(text)
    assert typecheck(expr, NAMES) in (kind, ExprType.NULL)
    assert parse(to_text(expr)) == expr
    expected = _python(text, row, today)
    got, unknown = _in_sql(engine, text, row, today)
    if unknown:  # never on PostgreSQL; on MariaDB only where the calendar ends
        assert engine.name != "postgresql"
        assert _leaves_the_calendar(expr, row, today), (text, row, today)
        return
    assert got == expected
    assert type(got) is type(expected) or isinstance(got, int | Decimal)


@SETTINGS
@given(
    data=st.data(),
    row=values,
    today=todays,
    extension=st.sampled_from([0, 0, 1, 31, 400]),
    offset=st.integers(-1, 1),
)
def test_a_due_date_is_kept_on_its_last_day_and_due_the_day_after(
    engine: Engine,
    data: st.DataObject,
    row: dict[str, Any],
    today: date,
    extension: int,
    offset: int,
) -> None:
    """The clock's last layers (a due date plus a hold's extension, `due < at`), around the
    day Python computes: not due on it, due from the next day; undeterminable when there is
    no due date, or (MariaDB) when it lies beyond 9999-12-31."""
    text = data.draw(typed(D, 3), label="due")
    try:
        expected: object = evaluate(parse(text), row, today)
    except ExprError as exc:  # before year 1 or after 9999
        expected = "before" if "BC" in exc.message else "after"
    last = None
    if isinstance(expected, date) and expected.toordinal() + extension <= date.max.toordinal():
        last = expected + timedelta(days=extension)
    at = today
    if last is not None:
        assume(date.min < last < date.max or offset == 0)
        at = last + timedelta(days=offset)
    dialect, params = engine.dialect, Params()

    def resolve(name: Name) -> sql.Composable:
        return dialect.bind(params, row[name.key], SQL_TYPES[NAMES[name.key]])

    due = compile_sql(parse(text), resolve, params, dialect.bind(params, today, "date"), dialect)
    extended = dialect.add_days(sql.SQL("due_raw"), sql.SQL("ext"))
    query = sql.SQL(
        "SELECT undeterminable, (NOT undeterminable AND due < {at}) AS would_be_due FROM "
        "(SELECT {extended} AS due, {unknown} AS undeterminable FROM "
        "(SELECT {due} AS due_raw, {ext} AS ext) AS b) AS s"
    ).format(
        at=dialect.bind(params, at, "date"),
        extended=extended,
        unknown=dialect.due_unknown(sql.SQL("due_raw"), extended),
        # typed: a due date that is always null (`null`, `d1 + null`) is a bare NULL
        due=sql.SQL("COALESCE({}, {})").format(due, dialect.bind(params, None, "date")),
        ext=dialect.bind(params, extension, "int"),
    )
    undeterminable, would_be_due = (bool(v) for v in engine.one(query, params.values))
    if expected is None:
        assert undeterminable and not would_be_due
    elif last is None:  # outside the years 1 to 9999, where MariaDB has no date
        # PostgreSQL's date beyond 9999 is never past; one before year 1 is, once the hold's
        # extension has run from year 1 (a date before year 1 plus `extension` days is before
        # 0001-01-01 plus `extension` days)
        if expected == "before":
            assume(at >= date(1, 1, 1) + timedelta(days=extension))
        assert would_be_due is (engine.name == "postgresql" and expected == "before")
        assert undeterminable is (engine.name == "mariadb")
    elif undeterminable:  # MariaDB, where a step of the arithmetic leaves the calendar
        assert engine.name == "mariadb" and not would_be_due
        assert _leaves_the_calendar(parse(text), row, today), (text, row, today)
    else:
        assert would_be_due is (last < at)
        assert would_be_due is (offset > 0)


# -- ill-typed combinations -----------------------------------------------------------------------
_ALL = [D, IV, B, N, T]
_VALID_ARITH = {(D, "+", IV), (D, "-", IV), (IV, "+", D), (IV, "+", IV), (IV, "-", IV)}


@st.composite
def ill_typed(draw: st.DrawFn) -> tuple[str, str, str]:
    """An expression combining two random operands in a way their types forbid, and both."""
    left_kind, right_kind = draw(st.sampled_from(_ALL)), draw(st.sampled_from(_ALL))
    left, right = draw(typed(left_kind, 1)), draw(typed(right_kind, 1))
    differ = left_kind is not right_kind
    shapes = [
        ((left_kind, "+", right_kind) not in _VALID_ARITH, f"({left}) + ({right})"),
        ((left_kind, "-", right_kind) not in _VALID_ARITH, f"({left}) - ({right})"),
        (differ or left_kind in (IV, T, B), f"({left}) < ({right})"),
        (differ or left_kind is IV, f"({left}) = ({right})"),
        (left_kind is not B, f"if {left} then 1 else 2"),
        (differ, f"if b1 then {left} else {right}"),
        (left_kind is not B or right_kind is not B, f"({left}) and ({right})"),
        (left_kind is not B, f"not ({left})"),
        (differ or left_kind not in (D, N), f"greatest({left}, {right})"),
        (differ, f"coalesce({left}, {right})"),
    ]
    text = draw(st.sampled_from([text for bad, text in shapes if bad]))
    return text, left, right


@SETTINGS
@given(case=ill_typed())
def test_typecheck_rejects_ill_typed_combinations(case: tuple[str, str, str]) -> None:
    text, left, right = case
    try:
        kind = typecheck(parse(text), NAMES)
    except ExprError as exc:
        assert exc.line == 1
        assert 1 <= exc.column <= len(text)
        assert exc.hint
        return
    # only a null operand (which fits any type) can make the combination legal
    operand_kinds = {typecheck(parse(left), NAMES), typecheck(parse(right), NAMES)}
    assert ExprType.NULL in operand_kinds, (text, kind)


@SETTINGS
@given(text=st.text(alphabet="abd1 0'\"().,+-=<>!_ifthenlsornotiyea\n\té", max_size=40))
def test_any_text_parses_or_fails_with_a_position(text: str) -> None:
    try:
        expr = parse(text)
    except ExprError as exc:
        lines = text.split("\n")
        assert 1 <= exc.line <= len(lines)
        assert 1 <= exc.column <= len(lines[exc.line - 1]) + 1
        assert exc.hint
        return
    assert parse(to_text(expr)) == expr
