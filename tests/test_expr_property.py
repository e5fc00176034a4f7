"""Random well-typed expressions: Python's `evaluate` and PostgreSQL always agree.

Hypothesis writes expressions as text over a few named values (dates around leap days and
month ends, sentinels at both ends of the calendar, nulls), checks they parse, type, print
back to the same tree, then evaluates them in Python and in PostgreSQL on one connection.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from retention.policy.expr import (
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

D, IV, B, N, T = ExprType.DATE, ExprType.INTERVAL, ExprType.BOOLEAN, ExprType.NUMBER, ExprType.TEXT
NAMES: dict[str, ExprType] = {"d1": D, "d2": D, "d3": D, "t1": T, "n1": N, "b1": B}
SQL_TYPES = {D: "date", T: "text", N: "numeric", B: "boolean"}

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


def _run_in_postgres(
    conn: psycopg.Connection[Any], text: str, row: dict[str, Any], today: date
) -> object:
    expr = parse(text)
    params = Params()

    def resolve(name: Name) -> sql.Composable:
        sql_type = sql.SQL(SQL_TYPES[NAMES[name.key]])
        return sql.SQL("{}::{}").format(params.add(row[name.key]), sql_type)

    compiled = compile_sql(expr, resolve, params, sql.SQL("{}::date").format(params.add(today)))
    _assert_no_inlined_value(compiled.as_string(conn))
    query = sql.SQL("SELECT {}").format(compiled)
    if typecheck(expr, NAMES) is IV:
        query = sql.SQL(
            "SELECT (extract(year FROM x) * 12 + extract(month FROM x))::int, "
            "extract(day FROM x)::int FROM (SELECT {} AS x) AS v"
        ).format(compiled)
    result = conn.execute(query, params.values).fetchone()
    assert result is not None
    return Interval(result[0], result[1]) if len(result) == 2 else result[0]


def _assert_no_inlined_value(text: str) -> None:
    """Apart from placeholders, the SQL holds no digit and no quote: no value was inlined."""
    bare = re.sub(r"%\(\w+\)s", "", text)
    assert not re.search(r"[0-9'\"]", bare), text


def _python(text: str, row: dict[str, Any], today: date) -> object:
    try:
        return evaluate(parse(text), row, today)
    except ExprError as exc:
        assert "outside the years 1 to 9999" in exc.message
        return "out of range"


def _postgres(conn: psycopg.Connection[Any], text: str, row: dict[str, Any], today: date) -> object:
    try:
        return _run_in_postgres(conn, text, row, today)
    except psycopg.DataError as exc:  # PostgreSQL computed it, psycopg cannot load it
        assert "year 10K" in str(exc) or "before year 1" in str(exc), exc
        return "out of range"


@SETTINGS
@given(kind=kinds, data=st.data(), row=values, today=todays)
def test_python_and_postgres_agree(
    conn: psycopg.Connection[Any],
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
    got = _postgres(conn, text, row, today)
    assert got == expected
    assert type(got) is type(expected) or isinstance(got, int | Decimal)


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
