"""The syntax tree of policy expressions, its error type, and its canonical text.

Every node is an immutable dataclass that keeps the position (1-based line and column inside
the expression text) where it was written, so later stages can point at it. Positions are not
part of equality: two trees are equal when they say the same thing.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal, TypeAlias, cast

from retention.errors import RetentionError

CompareOp: TypeAlias = Literal["=", "<>", "<", "<=", ">", ">="]
ArithOp: TypeAlias = Literal["+", "-"]
Func: TypeAlias = Literal["greatest", "least", "coalesce"]

KEYWORDS = frozenset(
    ["if", "then", "else", "and", "or", "not", "is", "null", "in", "true", "false", "date", "today"]
)


@dataclass(frozen=True, slots=True)
class Pos:
    """A place in the expression text: 1-based line and column."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line} column {self.column}"


class ExprError(RetentionError):
    """An expression that cannot be parsed, typed or evaluated.

    `message` says what is wrong without the position; `line` and `column` (1-based, inside
    the expression text) say where, so a caller can map them to a place in a policy file.
    `str(error)` gives both.
    """

    def __init__(self, message: str, line: int, column: int, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.line = line
        self.column = column

    @classmethod
    def at(cls, pos: Pos, message: str, hint: str | None = None) -> ExprError:
        """An error at the position of a node or token."""
        return cls(message, pos.line, pos.column, hint)

    def __str__(self) -> str:
        return f"line {self.line} column {self.column}: {self.message}"

    def render(self) -> str:
        text = f"error: {self}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class Unit(enum.Enum):
    """The unit of an interval literal (weeks count as 7 days)."""

    YEARS = "years"
    MONTHS = "months"
    WEEKS = "weeks"
    DAYS = "days"


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every node: a position and a way to walk the tree."""

    pos: Pos = field(kw_only=True, compare=False, default=Pos(1, 1))

    def children(self) -> tuple[Expr, ...]:
        """Direct sub-expressions, in text order."""
        return ()

    def walk(self) -> Iterator[Expr]:
        """This node and every node below it, depth first, in text order."""
        stack: list[Expr] = [cast("Expr", self)]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children()))

    def __str__(self) -> str:
        return to_text(cast("Expr", self))


@dataclass(frozen=True, slots=True)
class TextLit(Node):
    """A text value in single quotes."""

    value: str


@dataclass(frozen=True, slots=True)
class NumberLit(Node):
    """An integer (`int`) or a decimal (`Decimal`), possibly negative."""

    value: int | Decimal


@dataclass(frozen=True, slots=True)
class BoolLit(Node):
    """`true` or `false`."""

    value: bool


@dataclass(frozen=True, slots=True)
class NullLit(Node):
    """`null`: compatible with every type."""


@dataclass(frozen=True, slots=True)
class DateLit(Node):
    """`date 'YYYY-MM-DD'`."""

    value: date


@dataclass(frozen=True, slots=True)
class Today(Node):
    """`today`: the evaluation date supplied by the caller."""


@dataclass(frozen=True, slots=True)
class IntervalLit(Node):
    """`<amount> <unit>`, e.g. `10 ans`; `word` is the unit as written (lower case)."""

    amount: int
    unit: Unit
    word: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Name(Node):
    """A column or named date: `name`, or `table.name` when `table` is set."""

    name: str
    table: str | None = None

    @property
    def key(self) -> str:
        """`name` or `table.name`, as looked up in a type mapping."""
        return self.name if self.table is None else f"{self.table}.{self.name}"


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """`left <op> right`; `!=` is read as `<>`."""

    op: CompareOp
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Arith(Node):
    """`left + right` or `left - right` (dates and intervals)."""

    op: ArithOp
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class And(Node):
    """`left and right` (three-valued)."""

    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Or(Node):
    """`left or right` (three-valued)."""

    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Not(Node):
    """`not operand` (three-valued)."""

    operand: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    """`operand is null`, or `operand is not null` when `negated`."""

    operand: Expr
    negated: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


InItem: TypeAlias = TextLit | NumberLit | BoolLit | NullLit | DateLit | Today


@dataclass(frozen=True, slots=True)
class InList(Node):
    """`operand in (items)`, or `operand not in (items)` when `negated`."""

    operand: Expr
    items: tuple[InItem, ...]
    negated: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.operand, *self.items)


@dataclass(frozen=True, slots=True)
class If(Node):
    """`if cond then then_ else else_` (SQL `CASE`: an unknown condition takes `else`)."""

    cond: Expr
    then: Expr
    else_: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.cond, self.then, self.else_)


@dataclass(frozen=True, slots=True)
class Call(Node):
    """`greatest(...)`, `least(...)` or `coalesce(...)`, with at least one argument."""

    func: Func
    args: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.args


Expr: TypeAlias = (
    TextLit
    | NumberLit
    | BoolLit
    | NullLit
    | DateLit
    | Today
    | IntervalLit
    | Name
    | Compare
    | Arith
    | And
    | Or
    | Not
    | IsNull
    | InList
    | If
    | Call
)


# -- canonical text ----------------------------------------------------------------------
# Precedence levels, loosest first: if, or, and, not, predicate, sum, atom.
_IF, _OR, _AND, _NOT, _PREDICATE, _SUM, _ATOM = range(7)
_PLAIN_IDENT = re.compile(r"[^\W\dA-Z]\w*")


def quote_ident(name: str) -> str:
    """`name` as it must be written to be read back unchanged (quoted when needed)."""
    if _PLAIN_IDENT.fullmatch(name) and not _has_ascii_upper(name) and name not in KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def _has_ascii_upper(name: str) -> bool:
    return any("A" <= c <= "Z" for c in name)


def to_text(expr: Expr) -> str:
    """Canonical text of an expression; `parse(to_text(e)) == e`."""
    return _text(expr)


def _text(expr: Expr) -> str:
    match expr:
        case Name():
            return _name_text(expr)
        case Compare() | Arith() | And() | Or() | Not() | IsNull() | InList() | If() | Call():
            return _compound_text(expr)
        case _:
            return _literal_text(expr)


def _literal_text(expr: InItem | IntervalLit) -> str:
    match expr:
        case TextLit(value=value):
            return "'" + value.replace("'", "''") + "'"
        case NumberLit(value=value):
            return str(value)
        case BoolLit(value=value):
            return "true" if value else "false"
        case NullLit():
            return "null"
        case DateLit(value=value):
            return f"date '{value.isoformat()}'"
        case Today():
            return "today"
        case IntervalLit(amount=amount, unit=unit, word=word):
            return f"{amount} {word or unit.value}"


def _name_text(expr: Name) -> str:
    column = quote_ident(expr.name)
    return column if expr.table is None else f"{quote_ident(expr.table)}.{column}"


def _compound_text(expr: Compare | Arith | And | Or | Not | IsNull | InList | If | Call) -> str:
    match expr:
        case Compare(op=op, left=left, right=right):
            return f"{_sub(left, _SUM)} {op} {_sub(right, _SUM)}"
        case Arith(op=op, left=left, right=right):
            return f"{_sub(left, _SUM)} {op} {_sub(right, _ATOM)}"
        case And(left=left, right=right):
            return f"{_sub(left, _AND)} and {_sub(right, _NOT)}"
        case Or(left=left, right=right):
            return f"{_sub(left, _OR)} or {_sub(right, _AND)}"
        case Not(operand=operand):
            return f"not {_sub(operand, _NOT)}"
        case IsNull(operand=operand, negated=negated):
            return f"{_sub(operand, _SUM)} is {'not ' if negated else ''}null"
        case InList(operand=operand, items=items, negated=negated):
            listed = ", ".join(_literal_text(item) for item in items)
            return f"{_sub(operand, _SUM)} {'not ' if negated else ''}in ({listed})"
        case If(cond=cond, then=then, else_=else_):
            return f"if {_sub(cond, _OR)} then {_sub(then, _OR)} else {_text(else_)}"
        case Call(func=func, args=args):
            return f"{func}({', '.join(_text(arg) for arg in args)})"


def _sub(expr: Expr, needed: int) -> str:
    """Text of a sub-expression, in parentheses when it binds less tightly than `needed`."""
    text = _text(expr)
    return f"({text})" if _level(expr) < needed else text


def _level(expr: Expr) -> int:
    match expr:
        case If():
            return _IF
        case Or():
            return _OR
        case And():
            return _AND
        case Not():
            return _NOT
        case Compare() | IsNull() | InList():
            return _PREDICATE
        case Arith():
            return _SUM
        case NumberLit(value=value) if value < 0:
            return _SUM  # `x - -1` reads badly; `x - (-1)` does not
        case _:
            return _ATOM
