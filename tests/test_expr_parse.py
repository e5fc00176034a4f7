"""Parsing policy expressions: what is accepted, how it is read, and errors a person can act on."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from retention.policy.expr import Expr, ExprError, parse, to_text
from retention.policy.expr.nodes import (
    And,
    Arith,
    BoolLit,
    Call,
    Compare,
    DateLit,
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

R1112_7 = """\
if deces is not null and deces < derniere_visite + 10 years
then deces + 10 years
else greatest(derniere_visite + 20 years, naissance + 28 years)"""

# text -> canonical text (what `to_text` prints back; it parses to the same tree)
CANONICAL = [
    ("annule = '0'", "annule = '0'"),
    (
        "sejours.type in ('comp', 'ambu') and not annule = '1'",
        "sejours.type in ('comp', 'ambu') and not annule = '1'",
    ),
    ("statut is null or statut <> 'X'", "statut is null or statut <> 'X'"),
    ("statut != 'X'", "statut <> 'X'"),
    ("IF A THEN B ELSE C", "if a then b else c"),
    ("x Is Not Null", "x is not null"),
    ("x NOT IN (1, 2)", "x not in (1, 2)"),
    ("naissance + 28 ans", "naissance + 28 ans"),
    ("naissance + 1 AN", "naissance + 1 an"),
    ("d + 3 mois - 2 semaines + 1 semaine + 5 jours + 1 jour", None),
    ("d + 1 year + 2 months + 1 month + 3 weeks + 1 week + 4 days + 1 day", None),
    ("d + 10years", "d + 10 years"),
    ("1 year + 6 months", "1 year + 6 months"),
    ("d - (1 year + 6 months)", "d - (1 year + 6 months)"),
    ("(d - 1 year) + 6 months", "d - 1 year + 6 months"),
    ("'it''s'", "'it''s'"),
    ("''", "''"),
    ("'été'", "'été'"),
    ('"Date" < today', '"Date" < today'),
    ('"date de décès" is null', '"date de décès" is null'),
    ('t."a""b"', 't."a""b"'),
    ('"sejours".sortie', "sejours.sortie"),
    ("date_décès < date '2020-02-29'", "date_décès < date '2020-02-29'"),
    ("Naissance", "naissance"),
    ("plagesconsult.date > date '2020-01-01'", "plagesconsult.\"date\" > date '2020-01-01'"),
    ("date < today", '"date" < today'),
    ("t.null is null or t.IF = t.today", 't."null" is null or t."if" = t."today"'),
    ("n >= 2.50", "n >= 2.50"),
    ("n < -3", "n < -3"),
    ("n in (-1, 0.5, null)", "n in (-1, 0.5, null)"),
    ("b = true or b = FALSE", "b = true or b = false"),
    ("greatest(a)", "greatest(a)"),
    ("LEAST(a, b, c)", "least(a, b, c)"),
    ("Coalesce(a, null)", "coalesce(a, null)"),
    ("if a then b else if c then d else e", "if a then b else if c then d else e"),
    ("if (if a then b else c) then d else e", "if (if a then b else c) then d else e"),
    ("not not a", "not not a"),
    ("not (a or b)", "not (a or b)"),
    ("(a or b) and c", "(a or b) and c"),
    ("a or (b and c)", "a or b and c"),
    ("(((x)))", "x"),
    ("x in (today, date '2000-01-01')", "x in (today, date '2000-01-01')"),
    ("(d + 1 year) < today", "d + 1 year < today"),
    ("coalesce(if a then b else c, d)", "coalesce(if a then b else c, d)"),
    (R1112_7, " ".join(R1112_7.split())),
    ("  x\n\t=\r\n  1  ", "x = 1"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_valid_expression_reads_back_to_the_same_tree(text: str, canonical: str | None) -> None:
    expr = parse(text)
    if canonical is not None:
        assert to_text(expr) == canonical
    assert parse(to_text(expr)) == expr


# text -> expected tree (positions are not compared)
TREES: list[tuple[str, Expr]] = [
    ("a or b and c", Or(Name("a"), And(Name("b"), Name("c")))),
    ("not a = b", Not(Compare("=", Name("a"), Name("b")))),
    ("not a and b", And(Not(Name("a")), Name("b"))),
    (
        "d - 1 year + 6 months",
        Arith(
            "+",
            Arith("-", Name("d"), IntervalLit(1, Unit.YEARS)),
            IntervalLit(6, Unit.MONTHS),
        ),
    ),
    ("x + 2 semaines", Arith("+", Name("x"), IntervalLit(2, Unit.WEEKS))),
    ("x - 3 jours", Arith("-", Name("x"), IntervalLit(3, Unit.DAYS))),
    ("s.sortie is not null", IsNull(Name("sortie", "s"), negated=True)),
    (
        "x not in ('a', null, 3, 1.5, true, date '2024-02-29', today)",
        InList(
            Name("x"),
            (
                TextLit("a"),
                NullLit(),
                NumberLit(3),
                NumberLit(Decimal("1.5")),
                BoolLit(True),
                DateLit(date(2024, 2, 29)),
                Today(),
            ),
            negated=True,
        ),
    ),
    (
        "if a then b else if c then d else e",
        If(Name("a"), Name("b"), If(Name("c"), Name("d"), Name("e"))),
    ),
    (
        "greatest(a, b + 1 day)",
        Call("greatest", (Name("a"), Arith("+", Name("b"), IntervalLit(1, Unit.DAYS)))),
    ),
    ("'l''an'", TextLit("l'an")),
    ('"A"."B"', Name("B", "A")),
    ("an > 3", Compare(">", Name("an"), NumberLit(3))),
    ("jours = 3 jours", Compare("=", Name("jours"), IntervalLit(3, Unit.DAYS))),
    ("iffy = nullable", Compare("=", Name("iffy"), Name("nullable"))),
    ("Date + 1 day", Arith("+", Name("date"), IntervalLit(1, Unit.DAYS))),
    ("c.date = date '2020-02-29'", Compare("=", Name("date", "c"), DateLit(date(2020, 2, 29)))),
]


@pytest.mark.parametrize(("text", "tree"), TREES)
def test_expression_is_read_with_sql_precedence(text: str, tree: Expr) -> None:
    assert parse(text) == tree


def test_every_node_keeps_its_line_and_column() -> None:
    expr = parse(R1112_7)
    assert isinstance(expr, If)
    assert expr.pos == Pos(1, 1)
    assert isinstance(expr.cond, And)
    assert expr.cond.pos == Pos(1, 22)  # the 'and'
    names = [(node.key, node.pos) for node in expr.walk() if isinstance(node, Name)]
    assert names == [
        ("deces", Pos(1, 4)),
        ("deces", Pos(1, 26)),
        ("derniere_visite", Pos(1, 34)),
        ("deces", Pos(2, 6)),
        ("derniere_visite", Pos(3, 15)),
        ("naissance", Pos(3, 43)),
    ]
    interval = next(n for n in expr.walk() if isinstance(n, IntervalLit) and n.amount == 28)
    assert interval.pos == Pos(3, 55)


def test_walk_visits_every_node_in_text_order() -> None:
    names = [n.key for n in parse("greatest(a + 1 day, t.b, c)").walk() if isinstance(n, Name)]
    assert names == ["a", "t.b", "c"]


# text -> (line, column, start of the message)
ERRORS = [
    ("if deces then", 1, 14, "unexpected end of the expression; expected an expression"),
    ("if deces = then 1 else 2", 1, 12, "unexpected 'then'; expected an expression"),
    ("if a then b", 1, 12, "unexpected end of the expression; expected 'else'"),
    ("a +", 1, 4, "unexpected end of the expression; expected an expression"),
    ("a and\n  or b", 2, 3, "unexpected 'or'; expected an expression"),
    ("a == b", 1, 4, "unexpected '='; expected an expression"),
    ("a < b < c", 1, 7, "unexpected '<'; expected an operator or the end of the expression"),
    ("a b", 1, 3, "unexpected 'b'; expected an operator or the end of the expression"),
    ("10 heures", 1, 4, "unexpected 'heures'; expected an operator, a unit"),
    ("d < date 2020-01-01", 1, 10, "unexpected '2020'; expected a date in quotes"),
    ("t.", 1, 3, "unexpected end of the expression; expected a name"),
    ("t.1 = 1", 1, 3, "unexpected '1'; expected a name"),
    ("x in (a, b)", 1, 7, "unexpected 'a'; expected a value"),
    ("x in ()", 1, 7, "unexpected ')'; expected a value"),
    ("x in (1 2)", 1, 9, "unexpected '2'; expected ',' or ')'"),
    ("x is nul", 1, 6, "unexpected 'nul'; expected 'not' or 'null'"),
    ("x not like 'a'", 1, 7, "unexpected 'like'; expected 'in'"),
    ("(a", 1, 3, "unexpected end of the expression; expected ')'"),
    ("a)", 1, 2, "unexpected ')'; expected the end of the expression"),
    ("greatest(a,)", 1, 12, "unexpected ')'; expected an expression"),
    ("statut = 'X", 1, 10, "this text is never closed"),
    ('"statut = 1', 1, 1, "this name is never closed"),
    ("a && b", 1, 3, "unexpected character '&'"),
    ("a # b", 1, 3, "unexpected character '#'"),
    ("max(a, b)", 1, 1, "unknown function 'max'"),
    ("greatest()", 1, 1, "greatest() needs at least one argument"),
    ("d + 1.5 years", 1, 5, "a duration needs a whole number, not 1.5"),
    ("d + 1000000 days", 1, 5, "the duration 1000000 is too large"),
    ("d < date '2021-02-29'", 1, 10, "invalid date '2021-02-29': day is out of range"),
    ("d < date '29/02/2020'", 1, 10, "invalid date '29/02/2020': dates are written YYYY-MM-DD"),
    ('"" = 1', 1, 1, "a quoted name cannot be empty"),
    ("", 1, 1, "the expression is empty"),
    ("  \n ", 1, 1, "the expression is empty"),
    ("x = 'a\x00'", 1, 5, "a text or name cannot contain the NUL character"),
    ("(" * 60 + "d + 1 day" * 1 + ")" * 60 + " + 1 day" * 100, 1, 1, "the expression is nested"),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), ERRORS)
def test_invalid_expression_is_reported_where_it_goes_wrong(
    text: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(ExprError) as caught:
        parse(text)
    error = caught.value
    assert error.message.startswith(message), error.message
    if "nested" not in message:
        assert (error.line, error.column) == (line, column)
    assert error.hint
    assert str(error) == f"line {error.line} column {error.column}: {error.message}"


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("a == b", "compare with a single '='"),
        ("10 heures", "units: years/year/ans/an, months/month/mois"),
        ("d < date 2020-01-01", "a date is written with quotes: date '2020-01-31'"),
        ("t.1 = 1", "a name is letters, digits and _"),
        ("x in (a)", "an 'in' list holds values only"),
        ("if a then b", "write if <condition> then <value> else <value>"),
        ("if a then", "an expression is a name"),
        ("a && b", "write 'and'"),
        ("a b", "two values must be joined by an operator"),
    ],
)
def test_syntax_error_hint_says_what_is_allowed(text: str, hint: str) -> None:
    with pytest.raises(ExprError) as caught:
        parse(text)
    assert caught.value.hint is not None
    assert hint in caught.value.hint


def test_error_renders_for_the_terminal() -> None:
    with pytest.raises(ExprError) as caught:
        parse("if a then b")
    assert caught.value.render() == (
        "error: line 1 column 12: unexpected end of the expression; expected 'else'\n"
        "  hint: write if <condition> then <value> else <value>"
    )


def test_keywords_are_names_when_quoted() -> None:
    assert parse('"date" < "today"') == Compare("<", Name("date"), Name("today"))
