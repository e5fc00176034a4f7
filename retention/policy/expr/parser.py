"""Text to syntax tree: the grammar (LALR, via lark) and readable syntax errors.

Keywords (if then else and or not is null in true false date today) are case-insensitive and
reserved, except after a dot (`t.date`, as in PostgreSQL) and `date` when no quoted text follows
it (a column named `date` is common); otherwise a column named like a keyword is written in
double quotes (`"null"`). Unit words (years, ans, mois...) are only keywords right after a
number, and function names only before `(`. Unquoted names are folded
to lower case like PostgreSQL does (ASCII letters only); double-quoted names are kept as written.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import cast

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedToken

from retention.policy.expr.nodes import (
    KEYWORDS,
    And,
    Arith,
    ArithOp,
    BoolLit,
    Call,
    Compare,
    CompareOp,
    DateLit,
    Expr,
    ExprError,
    Func,
    If,
    InItem,
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

MAX_DEPTH = 100
MAX_INTERVAL_AMOUNT = 100_000

GRAMMAR = r"""
?start: expr

?expr: or_expr
     | IF expr THEN expr ELSE expr          -> if_expr

?or_expr: and_expr
        | or_expr OR and_expr                -> or_expr
?and_expr: not_expr
         | and_expr AND not_expr             -> and_expr
?not_expr: predicate
         | NOT not_expr                      -> not_expr
?predicate: sum
          | sum COMP_OP sum                  -> compare
          | sum IS NULL                      -> is_null
          | sum IS NOT NULL                  -> is_not_null
          | sum IN "(" items ")"             -> in_list
          | sum NOT IN "(" items ")"         -> not_in_list
?sum: atom
    | sum PLUS atom                          -> arith
    | sum MINUS atom                         -> arith
?atom: literal
     | NUMBER UNIT                           -> interval
     | name
     | IDENT "(" [args] ")"                  -> call
     | "(" expr ")"

items: literal ("," literal)*
args: expr ("," expr)*

literal: STRING                              -> text
       | NUMBER                              -> number
       | MINUS NUMBER                        -> negative
       | TRUE                                -> true
       | FALSE                               -> false
       | NULL                                -> null
       | TODAY                               -> today
       | DATE STRING                         -> date

name: ident
    | ident "." label
ident: IDENT | QIDENT | DATE
label: ident | IF | THEN | ELSE | OR | AND | NOT | IS | IN | NULL | TRUE | FALSE | TODAY

IF.2: /if\b/i
THEN.2: /then\b/i
ELSE.2: /else\b/i
OR.2: /or\b/i
AND.2: /and\b/i
NOT.2: /not\b/i
IS.2: /is\b/i
IN.2: /in\b/i
NULL.2: /null\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i
TODAY.2: /today\b/i
DATE.2: /date\b/i
UNIT.2: /(years?|ans?|months?|mois|weeks?|semaines?|days?|jours?)\b/i

COMP_OP: /<>|!=|<=|>=|=|<|>/
PLUS: "+"
MINUS: "-"
NUMBER: /[0-9]+(\.[0-9]+)?/
STRING: /'(?:[^']|'')*'/
QIDENT: /"(?:[^"]|"")*"/
IDENT: /(?!(?:@KEYWORDS@)\b)[^\W\d]\w*/i

%ignore /\s+/
""".replace("@KEYWORDS@", "|".join(sorted(KEYWORDS)))

_UNITS = {
    **dict.fromkeys(["year", "years", "an", "ans"], Unit.YEARS),
    **dict.fromkeys(["month", "months", "mois"], Unit.MONTHS),
    **dict.fromkeys(["week", "weeks", "semaine", "semaines"], Unit.WEEKS),
    **dict.fromkeys(["day", "days", "jour", "jours"], Unit.DAYS),
}
_FUNCS: dict[str, Func] = {"greatest": "greatest", "least": "least", "coalesce": "coalesce"}
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

UNITS_HINT = (
    "units: years/year/ans/an, months/month/mois, weeks/week/semaines/semaine, days/day/jours/jour"
)
EXPRESSION_HINT = (
    "an expression is a name (naissance, sejours.sortie), a value ('text', 42, true, null, "
    "date '2020-01-31', today), a duration (10 years), greatest(...), least(...), "
    "coalesce(...), not ..., if ... then ... else ..., or an expression in parentheses"
)
OPERATORS_HINT = (
    "operators: + -, = <> != < <= > >=, is null, is not null, in (...), not in (...), and, or"
)
VALUE_HINT = "an 'in' list holds values only: 'text', 42, true, false, null, date '2020-01-31'"


def _pos(token: Token) -> Pos:
    return Pos(token.line or 1, token.column or 1)


@v_args(inline=True)
class _Builder(Transformer[Token, Expr]):
    """Builds nodes while the LALR parser reduces (no intermediate tree)."""

    def if_expr(self, kw: Token, cond: Expr, _t: Token, then: Expr, _e: Token, else_: Expr) -> If:
        return If(cond, then, else_, pos=_pos(kw))

    def or_expr(self, left: Expr, op: Token, right: Expr) -> Or:
        return Or(left, right, pos=_pos(op))

    def and_expr(self, left: Expr, op: Token, right: Expr) -> And:
        return And(left, right, pos=_pos(op))

    def not_expr(self, op: Token, operand: Expr) -> Not:
        return Not(operand, pos=_pos(op))

    def compare(self, left: Expr, op: Token, right: Expr) -> Compare:
        text = "<>" if op.value == "!=" else op.value
        return Compare(cast(CompareOp, text), left, right, pos=_pos(op))

    def is_null(self, operand: Expr, kw: Token, _null: Token) -> IsNull:
        return IsNull(operand, pos=_pos(kw))

    def is_not_null(self, operand: Expr, kw: Token, _not: Token, _null: Token) -> IsNull:
        return IsNull(operand, negated=True, pos=_pos(kw))

    def in_list(self, operand: Expr, kw: Token, items: tuple[InItem, ...]) -> InList:
        return InList(operand, items, pos=_pos(kw))

    def not_in_list(
        self, operand: Expr, kw: Token, _in: Token, items: tuple[InItem, ...]
    ) -> InList:
        return InList(operand, items, negated=True, pos=_pos(kw))

    def arith(self, left: Expr, op: Token, right: Expr) -> Arith:
        return Arith(cast(ArithOp, op.value), left, right, pos=_pos(op))

    def interval(self, amount: Token, unit: Token) -> IntervalLit:
        word = unit.value.lower()
        return IntervalLit(_interval_amount(amount), _UNITS[word], word, pos=_pos(amount))

    def call(self, func: Token, args: tuple[Expr, ...] | None) -> Call:
        return Call(_func(func, args or ()), args or (), pos=_pos(func))

    def items(self, *items: InItem) -> tuple[InItem, ...]:
        return items

    def args(self, *args: Expr) -> tuple[Expr, ...]:
        return args

    def text(self, token: Token) -> TextLit:
        return TextLit(_unquote(token, "'"), pos=_pos(token))

    def number(self, token: Token) -> NumberLit:
        return NumberLit(_number(token.value), pos=_pos(token))

    def negative(self, minus: Token, token: Token) -> NumberLit:
        return NumberLit(-_number(token.value), pos=_pos(minus))

    def true(self, token: Token) -> BoolLit:
        return BoolLit(True, pos=_pos(token))

    def false(self, token: Token) -> BoolLit:
        return BoolLit(False, pos=_pos(token))

    def null(self, token: Token) -> NullLit:
        return NullLit(pos=_pos(token))

    def today(self, token: Token) -> Today:
        return Today(pos=_pos(token))

    def date(self, kw: Token, token: Token) -> DateLit:
        return DateLit(_date(token), pos=_pos(kw))

    def name(self, first: Token, second: Token | None = None) -> Name:
        if second is None:
            return Name(_ident(first), pos=_pos(first))
        return Name(_ident(second), _ident(first), pos=_pos(first))

    def ident(self, token: Token) -> Token:
        return token

    def label(self, token: Token) -> Token:
        return token


def _number(text: str) -> int | Decimal:
    return Decimal(text) if "." in text else int(text)


def _interval_amount(token: Token) -> int:
    if "." in token.value:
        raise ExprError.at(
            _pos(token),
            f"a duration needs a whole number, not {token.value}",
            "write 18 months instead of 1.5 years",
        )
    amount = int(token.value)
    if amount > MAX_INTERVAL_AMOUNT:
        raise ExprError.at(
            _pos(token),
            f"the duration {amount} is too large (at most {MAX_INTERVAL_AMOUNT})",
            "use a larger unit, e.g. 100 years rather than 36500 days",
        )
    return amount


def _func(token: Token, args: tuple[Expr, ...]) -> Func:
    func = _FUNCS.get(token.value.lower())
    if func is None:
        raise ExprError.at(
            _pos(token),
            f"unknown function '{token.value}'",
            "the functions are greatest(...), least(...) and coalesce(...)",
        )
    if not args:
        raise ExprError.at(
            _pos(token), f"{func}() needs at least one argument", f"write {func}(a, b, ...)"
        )
    return func


def _unquote(token: Token, quote: str) -> str:
    text = str(token.value)[1:-1].replace(quote * 2, quote)
    if "\x00" in text:
        raise ExprError.at(
            _pos(token),
            "a text or name cannot contain the NUL character",
            "PostgreSQL cannot store it; remove it from the policy file",
        )
    return text


def _ident(token: Token) -> str:
    if token.type == "QIDENT":
        name = _unquote(token, '"')
        if not name:
            raise ExprError.at(
                _pos(token),
                'a quoted name cannot be empty ("")',
                'write the name between the double quotes, e.g. "Date"',
            )
        return name
    return "".join(c.lower() if "A" <= c <= "Z" else c for c in token.value)


def _date(token: Token) -> date:
    text = token.value[1:-1]
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
        problem = "dates are written YYYY-MM-DD"
    except ValueError as exc:
        problem = str(exc)
    raise ExprError.at(
        _pos(token), f"invalid date '{text}': {problem}", "write a date as date '2020-01-31'"
    )


_PARSER = Lark(
    GRAMMAR,
    parser="lalr",
    lexer="contextual",
    transformer=_Builder(),
    maybe_placeholders=True,
)


def parse(text: str) -> Expr:
    """Parse an expression; raises ExprError with a 1-based line and column on bad input."""
    if not text.strip():
        raise ExprError("the expression is empty", 1, 1, EXPRESSION_HINT)
    try:
        expr = cast(Expr, _PARSER.parse(text))
    except UnexpectedToken as exc:
        raise _token_error(exc, text) from None
    except UnexpectedCharacters as exc:
        raise _character_error(exc, text) from None
    except LarkError as exc:  # pragma: no cover - every lark error is one of the above
        raise ExprError(f"cannot read the expression ({exc})", 1, 1, EXPRESSION_HINT) from None
    _check_depth(expr)
    return expr


def _check_depth(expr: Expr) -> None:
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExprError.at(
                node.pos,
                f"the expression is nested too deeply (more than {MAX_DEPTH} levels)",
                "split it into named dates",
            )
        stack.extend((child, depth + 1) for child in node.children())


# -- syntax errors -----------------------------------------------------------------------
_NAME_START = frozenset(["IDENT", "QIDENT"])
_OPERATORS = frozenset(["PLUS", "COMP_OP", "AND", "OR"])
_WORDS = {
    "STRING": "a date in quotes, like '2020-01-31'",
    "NOT": "'not'",
    "IN": "'in'",
    "NULL": "'null'",
    "LPAR": "'('",
    "THEN": "'then'",
    "ELSE": "'else'",
    "COMMA": "','",
    "RPAR": "')'",
    "UNIT": "a unit (years, months, weeks, days)",
    "$END": "the end of the expression",
}


def _token_error(exc: UnexpectedToken, text: str) -> ExprError:
    token = exc.token
    expected = _accepted(exc)
    message = f"expected {_describe(expected)}"
    hint = _hint(expected, exc)
    if token.type == "$END":
        line, column = _end_position(text)
        return ExprError(f"unexpected end of the expression; {message}", line, column, hint)
    return ExprError.at(_pos(token), f"unexpected '{token.value}'; {message}", hint)


def _accepted(exc: UnexpectedToken) -> set[str]:
    """Terminals the parser would really accept here (lark's own set is a superset)."""
    parser = exc.interactive_parser
    if parser is None:  # pragma: no cover - lark always attaches one
        return {str(name) for name in exc.expected}
    accepted: set[str] = parser.accepts()  # type: ignore[no-untyped-call]
    return accepted


def _describe(expected: set[str]) -> str:
    """The expected terminals in words, most useful first."""
    if "IDENT" in expected and "NUMBER" not in expected:
        return "a name"  # after a dot, where keywords are names too
    phrases: list[str] = []
    if "NUMBER" in expected:
        phrases.append("an expression" if expected & _NAME_START else "a value")
    elif "STRING" in expected:
        phrases.append(_WORDS["STRING"])
    if expected & _OPERATORS:
        phrases.append("an operator")
    elif not phrases:
        phrases.extend(_WORDS[name] for name in ("NOT", "IN", "NULL", "LPAR") if name in expected)
    names = ("THEN", "ELSE", "COMMA", "RPAR", "UNIT", "$END")
    phrases.extend(_WORDS[name] for name in names if name in expected)
    return _or_list(phrases or ["something else"])


def _or_list(phrases: list[str]) -> str:
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _hint(expected: set[str], exc: UnexpectedToken) -> str:
    previous = exc.token_history[-1] if exc.token_history else None
    word = exc.token.type in ("IDENT", "QIDENT")
    if previous is not None and previous.type == "DATE":
        return "a date is written with quotes: date '2020-01-31'"
    if exc.token.value == "=" and "NUMBER" in expected:
        return "compare with a single '='"
    if word and "UNIT" in expected:
        return UNITS_HINT
    if expected & {"THEN", "ELSE"} and not expected & _OPERATORS:
        return "write if <condition> then <value> else <value>"
    if "IDENT" in expected and "NUMBER" not in expected:
        return 'a name is letters, digits and _ (starting with a letter), or any text in "..."'
    if "NUMBER" in expected:
        return EXPRESSION_HINT if expected & _NAME_START else VALUE_HINT
    if {"COMMA", "RPAR"} <= expected and not expected & _OPERATORS:
        return "separate the items with ',' and close the list with ')'"
    if word and expected & _OPERATORS:
        return "two values must be joined by an operator; " + OPERATORS_HINT
    return OPERATORS_HINT


def _end_position(text: str) -> tuple[int, int]:
    """Line and column just after the last non-blank character."""
    body = text.rstrip()
    line = body.count("\n") + 1
    return line, len(body) - (body.rfind("\n") + 1) + 1


_CHAR_HINTS = {
    "'": "a text in single quotes is not closed; write '' for a quote inside a text",
    '"': 'a name in double quotes is not closed; write "" for a quote inside a name',
    "&": "write 'and' instead of '&&'",
    "|": "write 'or' instead of '||'",
    "!": "write 'not' for negation, and '<>' or '!=' for 'different from'",
}


def _character_error(exc: UnexpectedCharacters, text: str) -> ExprError:
    char = str(exc.char)
    if char in ("'", '"'):
        kind = "text" if char == "'" else "name"
        message = f"this {kind} is never closed (missing {char})"
    else:
        message = f"unexpected character '{char}'"
    hint = _CHAR_HINTS.get(char, EXPRESSION_HINT + "; " + OPERATORS_HINT)
    return ExprError(message, exc.line, exc.column, hint)
