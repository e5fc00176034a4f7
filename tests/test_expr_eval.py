"""Typing, evaluating and compiling expressions: Python and PostgreSQL give the same answers."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
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
    typecheck,
)

TODAY = date(2024, 6, 1)
D, IV, B, N, T = ExprType.DATE, ExprType.INTERVAL, ExprType.BOOLEAN, ExprType.NUMBER, ExprType.TEXT

R1112_7 = """\
if deces is not null and deces < derniere_visite + 10 years
then deces + 10 years
else greatest(derniere_visite + 20 years, naissance + 28 years)"""


def _patient(naissance: date | None, visite: date | None, deces: date | None) -> dict[str, Any]:
    return {"naissance": naissance, "derniere_visite": visite, "deces": deces}


# (expression, values, expected result)
CASES: list[tuple[str, dict[str, Any], object]] = [
    # CSP R1112-7, hand-made patients
    (R1112_7, _patient(date(1950, 3, 10), date(2000, 5, 2), None), date(2020, 5, 2)),
    (R1112_7, _patient(date(2000, 1, 15), date(2005, 6, 1), None), date(2028, 1, 15)),
    (R1112_7, _patient(date(1960, 1, 1), date(2015, 1, 1), date(2018, 1, 1)), date(2028, 1, 1)),
    (R1112_7, _patient(date(1940, 1, 1), date(2004, 1, 1), date(2019, 1, 1)), date(2024, 1, 1)),
    (R1112_7, _patient(date(2010, 1, 1), date(2012, 1, 1), date(2013, 1, 1)), date(2023, 1, 1)),
    # died exactly 10 years after the last visit: not "before", so the general rule applies
    (R1112_7, _patient(date(1940, 1, 1), date(2004, 1, 1), date(2014, 1, 1)), date(2024, 1, 1)),
    # born on a leap day: the 28th birthday is clamped to February 28
    (R1112_7, _patient(date(2000, 2, 29), date(2001, 1, 1), None), date(2028, 2, 29)),
    (R1112_7, _patient(date(1996, 2, 29), date(1997, 1, 1), None), date(2024, 2, 29)),
    (R1112_7, _patient(date(1995, 2, 28), date(1996, 1, 1), None), date(2023, 2, 28)),
    # no visit recorded: greatest() ignores the null, only the 28th birthday remains
    (R1112_7, _patient(date(2000, 6, 1), None, None), date(2028, 6, 1)),
    (R1112_7, _patient(None, None, None), None),
    # leap days and month ends (PostgreSQL adds months first, clamped to the month's end)
    ("d + 1 year", {"d": date(2020, 2, 29)}, date(2021, 2, 28)),
    ("d - 1 year", {"d": date(2020, 2, 29)}, date(2019, 2, 28)),
    ("d + 4 years", {"d": date(2020, 2, 29)}, date(2024, 2, 29)),
    ("d + 1 an", {"d": date(2019, 2, 28)}, date(2020, 2, 28)),
    ("d + 12 mois", {"d": date(2020, 2, 29)}, date(2021, 2, 28)),
    ("d + 1 month", {"d": date(2020, 1, 31)}, date(2020, 2, 29)),
    ("d + 1 month", {"d": date(2021, 1, 31)}, date(2021, 2, 28)),
    ("d + 1 month + 1 month", {"d": date(2021, 1, 31)}, date(2021, 3, 28)),
    ("d + 2 months", {"d": date(2021, 1, 31)}, date(2021, 3, 31)),
    ("d - 1 month", {"d": date(2021, 3, 31)}, date(2021, 2, 28)),
    ("d + 1 month", {"d": date(2021, 12, 31)}, date(2022, 1, 31)),
    ("d - 13 months", {"d": date(2021, 1, 31)}, date(2019, 12, 31)),
    ("d + 1 year + 6 months", {"d": date(2020, 8, 31)}, date(2022, 2, 28)),
    ("d + (1 year + 6 months)", {"d": date(2020, 8, 31)}, date(2022, 2, 28)),
    ("d + (1 month + 1 day)", {"d": date(2021, 1, 31)}, date(2021, 3, 1)),
    ("d - (1 month + 1 day)", {"d": date(2021, 3, 31)}, date(2021, 2, 27)),
    ("d + (1 month - 1 day)", {"d": date(2021, 1, 31)}, date(2021, 2, 27)),
    ("d + 1 day", {"d": date(2020, 2, 28)}, date(2020, 2, 29)),
    ("d + 2 weeks", {"d": date(2020, 2, 20)}, date(2020, 3, 5)),
    ("d - 3 semaines", {"d": date(2021, 1, 10)}, date(2020, 12, 20)),
    ("d + 365 jours", {"d": date(2020, 1, 1)}, date(2020, 12, 31)),
    ("6 months + d", {"d": date(2020, 8, 31)}, date(2021, 2, 28)),
    ("d + 0 days", {"d": date(2020, 2, 29)}, date(2020, 2, 29)),
    ("today + 1 day", {}, date(2024, 6, 2)),
    ("date '9999-12-30' + 1 day", {}, date(9999, 12, 31)),
    ("date '0001-01-02' - 1 day", {}, date(1, 1, 1)),
    # intervals
    ("1 year + 6 months", {}, Interval(months=18)),
    ("1 year - 1 day", {}, Interval(months=12, days=-1)),
    ("2 semaines + 1 jour", {}, Interval(days=15)),
    ("1 month - 2 months", {}, Interval(months=-1)),
    # beyond year 9999 inside the computation, as PostgreSQL does
    ("fin + 10 years > today", {"fin": date(9999, 12, 31)}, True),
    ("fin + 10 years - 20 years", {"fin": date(9999, 12, 31)}, date(9989, 12, 31)),
    ("greatest(fin + 1 year, today) = today", {"fin": date(9999, 12, 31)}, False),
    ("least(fin + 1 year, today)", {"fin": date(9999, 12, 31)}, TODAY),
    ("d - 10 years < date '0001-01-01'", {"d": date(5, 1, 1)}, True),
    # three-valued logic
    ("null = 1", {}, None),
    ("null = null", {}, None),
    ("d = d", {"d": None}, None),
    ("d < today", {"d": None}, None),
    ("a and b", {"a": None, "b": False}, False),
    ("a and b", {"a": False, "b": None}, False),
    ("a and b", {"a": None, "b": True}, None),
    ("a and b", {"a": True, "b": True}, True),
    ("a and b", {"a": None, "b": None}, None),
    ("a or b", {"a": None, "b": True}, True),
    ("a or b", {"a": True, "b": None}, True),
    ("a or b", {"a": None, "b": False}, None),
    ("a or b", {"a": False, "b": False}, False),
    ("not a", {"a": None}, None),
    ("not a", {"a": False}, True),
    ("a is null", {"a": None}, True),
    ("a is not null", {"a": None}, False),
    ("(null = 1) is null", {}, True),
    ("if a then 1 else 2", {"a": None}, 2),
    ("if a then 1 else 2", {"a": True}, 1),
    ("if a then 1 else 2", {"a": False}, 2),
    ("if d < today then 'old' else 'new'", {"d": None}, "new"),
    ("if a then null else 2", {"a": True}, None),
    # in / not in
    ("x in ('a', 'b')", {"x": "b"}, True),
    ("x in ('a', 'b')", {"x": "c"}, False),
    ("x in ('a', null)", {"x": "a"}, True),
    ("x in ('a', null)", {"x": "c"}, None),
    ("x in ('a', 'b')", {"x": None}, None),
    ("x not in ('a', 'b')", {"x": "c"}, True),
    ("x not in ('a', 'b')", {"x": "a"}, False),
    ("x not in ('a', null)", {"x": "c"}, None),
    ("x not in ('a', null)", {"x": "a"}, False),
    ("x not in ('a')", {"x": None}, None),
    ("d in (date '2020-02-29', today)", {"d": TODAY}, True),
    ("n in (1, 2.5)", {"n": Decimal("2.50")}, True),
    ("n not in (-1, 0)", {"n": 0}, False),
    # greatest / least / coalesce
    ("greatest(d1, d2)", {"d1": None, "d2": date(2020, 1, 1)}, date(2020, 1, 1)),
    ("greatest(d1, d2, d3)", {"d1": None, "d2": None, "d3": None}, None),
    ("least(d1, d2)", {"d1": date(2020, 1, 1), "d2": None}, date(2020, 1, 1)),
    ("least(d1, d2)", {"d1": date(2020, 1, 2), "d2": date(2020, 1, 1)}, date(2020, 1, 1)),
    ("greatest(d1, d2)", {"d1": date(2020, 1, 2), "d2": date(2020, 1, 1)}, date(2020, 1, 2)),
    ("greatest(null)", {}, None),
    ("greatest(1, 2.5, null)", {}, Decimal("2.5")),
    ("least(n, 3)", {"n": -7}, -7),
    ("coalesce(d1, d2, today)", {"d1": None, "d2": date(2020, 1, 1)}, date(2020, 1, 1)),
    ("coalesce(d1, d2)", {"d1": None, "d2": None}, None),
    ("coalesce(null, 'x')", {}, "x"),
    ("coalesce(null, 1 year)", {}, Interval(months=12)),
    ("coalesce(d1, null) + 1 day", {"d1": date(2020, 2, 28)}, date(2020, 2, 29)),
    # null in arithmetic
    ("d + 1 year", {"d": None}, None),
    ("d + null", {"d": date(2020, 1, 1)}, None),
    ("null + 1 year", {}, None),
    ("(if a then null else null) + 1 year", {"a": True}, None),
    ("greatest(d + null, today)", {"d": date(2030, 1, 1)}, TODAY),
    # text, numbers, booleans
    ("annule = '0'", {"annule": "0"}, True),
    ("annule = '0'", {"annule": "00"}, False),
    ("statut is null or statut <> 'X'", {"statut": None}, True),
    ("statut is null or statut <> 'X'", {"statut": "X"}, False),
    ("statut != 'X'", {"statut": "x"}, True),
    ("nom = 'l''été'", {"nom": "l'été"}, True),
    (
        "sejours.type in ('comp', 'ambu') and not annule = '1'",
        {"sejours.type": "comp", "annule": "0"},
        True,
    ),
    (
        "sejours.type in ('comp', 'ambu') and not annule = '1'",
        {"sejours.type": "comp", "annule": None},
        None,
    ),
    ("n < 2.5", {"n": 2}, True),
    ("n = 2", {"n": Decimal("2.0")}, True),
    ("n >= -1", {"n": -1}, True),
    ("ok = true", {"ok": False}, False),
    ("ok <> false", {"ok": True}, True),
    ("1.50", {}, Decimal("1.50")),
    ("'abc'", {}, "abc"),
]


def _id(case: tuple[str, dict[str, Any], object]) -> str:
    return " ".join(case[0].split())[:60] + " " + repr(case[1])[:40]


@pytest.mark.parametrize(("text", "values", "expected"), CASES, ids=[_id(c) for c in CASES])
def test_evaluate_gives_the_sql_answer(text: str, values: dict[str, Any], expected: object) -> None:
    result = evaluate(parse(text), values, TODAY)
    assert result == expected
    assert type(result) is type(expected) or isinstance(expected, int | Decimal)


# the type of each name whose value may be None (others are dates)
_NULLABLE = {
    "a": "boolean",
    "b": "boolean",
    "ok": "boolean",
    "x": "text",
    "statut": "text",
    "annule": "text",
    "n": "numeric",
}


def _sql_type(key: str, value: object) -> str:
    if value is None:
        return _NULLABLE.get(key, "date")
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | Decimal):
        return "numeric"
    return "date"


def _types_of(values: dict[str, Any]) -> dict[str, ExprType]:
    kinds = {"boolean": B, "text": T, "numeric": N, "date": D}
    return {key: kinds[_sql_type(key, value)] for key, value in values.items()}


def run_in_postgres(conn: psycopg.Connection[Any], text: str, values: dict[str, Any]) -> object:
    """Compile `text` with each name bound as a typed parameter and run it."""
    expr = parse(text)
    kind = typecheck(expr, _types_of(values))
    params = Params()

    def resolve(name: Name) -> sql.Composable:
        value = values[name.key]
        sql_type = sql.SQL(_sql_type(name.key, value))
        return sql.SQL("{}::{}").format(params.add(value), sql_type)

    today = sql.SQL("{}::date").format(params.add(TODAY))
    compiled = compile_sql(expr, resolve, params, today)
    if kind is ExprType.INTERVAL:
        query = sql.SQL(
            "SELECT (extract(year FROM x) * 12 + extract(month FROM x))::int, "
            "extract(day FROM x)::int FROM (SELECT {} AS x) AS v"
        ).format(compiled)
        row = conn.execute(query, params.values).fetchone()
        assert row is not None
        return Interval(row[0], row[1])
    row = conn.execute(sql.SQL("SELECT {}").format(compiled), params.values).fetchone()
    assert row is not None
    return row[0]


def test_postgres_gives_the_same_answers(conn: psycopg.Connection[Any]) -> None:
    for text, values, expected in CASES:
        assert run_in_postgres(conn, text, values) == expected, text


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("fin + 10 years", {"fin": date(9999, 12, 31)}),
        ("d - 10 years", {"d": date(5, 1, 1)}),
        ("greatest(fin + 1 day, today)", {"fin": date(9999, 12, 31)}),
    ],
)
def test_date_beyond_year_9999_is_an_error_on_both_sides(
    conn: psycopg.Connection[Any], text: str, values: dict[str, Any]
) -> None:
    with pytest.raises(ExprError, match="outside the years 1 to 9999"):
        evaluate(parse(text), values, TODAY)
    with pytest.raises(psycopg.DataError):
        run_in_postgres(conn, text, values)


def test_date_beyond_the_timestamp_range_is_an_error_on_both_sides(
    conn: psycopg.Connection[Any],
) -> None:
    text = "d + 100000 years + 100000 years + 100000 years"
    with pytest.raises(ExprError, match="out of range"):
        evaluate(parse(text), {"d": date(2000, 1, 1)}, TODAY)
    with pytest.raises(psycopg.DataError, match="out of range"):
        run_in_postgres(conn, text, {"d": date(2000, 1, 1)})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "no value was given for 'd'"),
        ({"d": datetime(2020, 1, 1, 12)}, "the value of 'd' is a datetime"),
        ({"d": Decimal("NaN")}, "is not a number (NaN)"),
        ({"d": [1]}, "has an unusable type list"),
        ({"d": "2020-01-01"}, "cannot add a text and a duration"),
    ],
)
def test_unusable_value_is_an_error_at_the_name(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ExprError, match=re.escape(message)) as caught:
        evaluate(parse("x or d + 1 year < today"), {"x": None, **values}, TODAY)
    assert caught.value.line == 1


# -- typecheck -----------------------------------------------------------------------------
NAMES = {
    "naissance": D,
    "deces": D,
    "derniere_visite": D,
    "annule": T,
    "statut": T,
    "age": N,
    "ok": B,
    "sejours.type": T,
    "sejours.sortie": D,
}

TYPED = [
    (R1112_7, D),
    ("naissance + 28 years", D),
    ("28 years + naissance", D),
    ("naissance - (1 year + 6 months)", D),
    ("1 year + 6 months", IV),
    ("naissance + null", D),
    ("null + naissance", D),
    ("1 year - null", IV),
    ("1 year + null", ExprType.NULL),
    ("null", ExprType.NULL),
    ("if ok then null else null", ExprType.NULL),
    ("if ok then null else naissance", D),
    ("if null then 1 else 2", N),
    ("annule = '0'", B),
    ("sejours.type in ('comp', 'ambu') and not annule = '1'", B),
    ("statut is null or statut <> 'X'", B),
    ("age >= 18 and ok", B),
    ("ok = true", B),
    ("null = null", B),
    ("(1 year) is null", B),
    ("greatest(naissance, null, sejours.sortie)", D),
    ("least(age, 3.5)", N),
    ("coalesce(statut, 'X')", T),
    ("coalesce(ok, null)", B),
    ("coalesce(1 year, null)", IV),
    ("x in (null)", None),
]


@pytest.mark.parametrize(("text", "expected"), TYPED)
def test_typecheck_gives_the_result_type(text: str, expected: ExprType | None) -> None:
    if expected is None:
        with pytest.raises(ExprError):
            typecheck(parse(text), NAMES)
    else:
        assert typecheck(parse(text), NAMES) is expected


# (expression, column of the error, start of the message)
ILL_TYPED = [
    ("naissance + deces", 11, "cannot add a date to a date"),
    ("naissance - deces", 11, "cannot subtract a date from a date"),
    ("1 year - naissance", 8, "cannot subtract a date from a duration"),
    ("age + 1", 5, "cannot add a number to a number"),
    ("naissance < 3", 11, "cannot compare a date with a number"),
    ("naissance = '2020-01-01'", 11, "cannot compare a date with a text"),
    ("statut < 'X'", 8, "'<' cannot order a text"),
    ("ok > false", 4, "'>' cannot order a condition"),
    ("1 year = 12 months", 8, "durations cannot be compared"),
    ("if naissance then 1 else 2", 4, "'if' needs a condition (true/false), not a date"),
    (
        "if ok then naissance else 3",
        1,
        "the branches of 'if' differ: a date after 'then', a number",
    ),
    ("naissance and ok", 1, "'and' needs a condition (true/false), not a date"),
    ("ok or statut", 7, "'or' needs a condition (true/false), not a text"),
    ("not age", 5, "'not' needs a condition (true/false), not a number"),
    ("statut in ('a', 1)", 17, "cannot compare a text with a number in an 'in' list"),
    ("(1 year) in (null)", 10, "'in' cannot compare a duration"),
    ("greatest(naissance, age)", 21, "greatest() mixes a date and a number"),
    ("least(statut, 'a')", 1, "least() cannot order a text"),
    ("coalesce(statut, ok)", 18, "coalesce() mixes a text and a condition"),
    ("naissnce + 1 year", 1, "unknown name 'naissnce'; did you mean 'naissance'?"),
    ("sejours.sorti", 1, "unknown name 'sejours.sorti'; did you mean 'sejours.sortie'?"),
    ("zzz", 1, "unknown name 'zzz'"),
]


@pytest.mark.parametrize(("text", "column", "message"), ILL_TYPED)
def test_typecheck_rejects_ill_typed_expression_at_the_culprit(
    text: str, column: int, message: str
) -> None:
    with pytest.raises(ExprError) as caught:
        typecheck(parse(text), NAMES)
    assert caught.value.message.startswith(message), caught.value.message
    assert (caught.value.line, caught.value.column) == (1, column)


def test_unknown_name_hint_lists_the_known_names() -> None:
    with pytest.raises(ExprError) as caught:
        typecheck(parse("zzz"), {"b": D, "a": D, "Grand": D})
    assert caught.value.hint == 'known names: "Grand", a, b'  # dates only: no text to quote


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("annule = oui", "a text value is written in single quotes: 'oui'; known names: "),
        ("naissance + years", "a duration is a number and its unit: 20 years; known names: "),
        ("naissance + ans", "a duration is a number and its unit: 20 ans; known names: "),
        ("naisance + 2 years", "known names: "),  # close to a name: no other guess
    ],
)
def test_an_unknown_name_says_what_was_probably_meant(text: str, hint: str) -> None:
    with pytest.raises(ExprError) as caught:
        typecheck(parse(text), {"naissance": D, "annule": ExprType.TEXT})
    assert caught.value.hint is not None and caught.value.hint.startswith(hint)


def test_double_quoted_value_hints_at_single_quotes() -> None:
    with pytest.raises(ExprError) as caught:
        typecheck(parse('statut = "X"'), NAMES)
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("text values are written in single quotes")


def test_interval_names_are_refused() -> None:
    with pytest.raises(ExprError, match="durations must be written in the policy"):
        typecheck(parse("d + duree"), {"d": D, "duree": IV})


# -- compile_sql -----------------------------------------------------------------------------
def _compile(text: str) -> tuple[str, dict[str, object]]:
    params = Params("q")
    compiled = compile_sql(
        parse(text),
        lambda name: sql.Identifier(*([name.table] if name.table else []), name.name),
        params,
        sql.Placeholder("as_of"),
    )
    assert isinstance(compiled, sql.Composed)
    return compiled.as_string(), params.values


def test_compiled_sql_binds_every_literal() -> None:
    text, values = _compile(
        "if s.a in ('x''; drop table t; --', 'b') and n < 2.5 and ok = true "
        "then d + 10 ans else greatest(d + 1 month, date '2020-02-29', today)"
    )
    assert text == (
        'CASE WHEN ((("s"."a" IN (%(q1)s, %(q2)s)) AND ("n" < %(q3)s::numeric)) '
        'AND ("ok" = %(q4)s::boolean)) THEN ("d" + make_interval(years => %(q5)s::int))::date '
        'ELSE GREATEST(("d" + make_interval(months => %(q6)s::int))::date, %(q7)s::date, '
        "%(as_of)s) END"
    )
    assert values == {
        "q1": "x'; drop table t; --",
        "q2": "b",
        "q3": Decimal("2.5"),
        "q4": True,
        "q5": 10,
        "q6": 1,
        "q7": date(2020, 2, 29),
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "1 year + 2 semaines",
            "(make_interval(years => %(q1)s::int) + make_interval(weeks => %(q2)s::int))",
        ),
        ("d - 3 jours", '("d" - make_interval(days => %(q1)s::int))::date'),
        ("n = 12345678901234567890", '("n" = %(q1)s::numeric)'),
        ("n <> -3", '("n" <> %(q1)s::bigint)'),
        ("d + null", "NULL"),
        ("coalesce(null, if x then null else null)", "NULL"),
        ("x is not null", '("x" IS NOT NULL)'),
        ("x not in (null, 'a')", '("x" NOT IN (NULL, %(q1)s))'),
        ("not x", '(NOT "x")'),
        ("x or y", '("x" OR "y")'),
    ],
)
def test_compiled_sql_shape(text: str, expected: str) -> None:
    assert _compile(text)[0] == expected


def test_resolved_expression_is_parenthesized() -> None:
    params = Params()
    compiled = compile_sql(
        parse("d + 1 day"), lambda _: sql.SQL("SELECT max(x) FROM t"), params, sql.SQL("today")
    )
    assert (
        compiled.as_string()
        == "((SELECT max(x) FROM t) + make_interval(days => %(p1)s::int))::date"
    )


def test_params_allocate_distinct_names_per_prefix() -> None:
    first, second = Params(), Params("c")
    assert [first.add(1).as_string(), first.add(2).as_string()] == ["%(p1)s", "%(p2)s"]
    assert second.add(3).as_string() == "%(c1)s"
    assert first.values == {"p1": 1, "p2": 2}
    assert second.values == {"c1": 3}


@pytest.mark.parametrize("prefix", ["", "p1", "1p", "a-b", "a b"])
def test_params_refuse_a_prefix_that_could_collide(prefix: str) -> None:
    with pytest.raises(ValueError, match="invalid placeholder prefix"):
        Params(prefix)


def test_compile_refuses_an_expression_that_was_not_type_checked() -> None:
    with pytest.raises(ExprError, match="type-checked"):
        _compile("a + b")
