"""psycopg.sql trees rendered as MariaDB SQL text: the one module that reads their internals.

Callers compose SQL with `retention.engines.sql` (psycopg's objects) and psycopg's parameter
rules (`%s`, `%(name)s`, `%%`, or no parsing at all when no parameters are given). Here:

- `Identifier` becomes backticked names, a backtick inside doubled, qualified `a`.`b`;
- `Literal` of a number, a boolean or None is written as SQL (digits cannot inject anything);
  any other value (text, bytes, dates) becomes a parameter: nothing from a policy file or a row
  is ever pasted into the text;
- `Placeholder` and the text's `%s` / `%(name)s` (and `%b`, `%t`) become the driver's `?`,
  with the values bound in order (:func:`bind`); `%%` becomes `%`;
- a JSON document (`retention.engines.params.Json`) is sent as its JSON text (the tool's tables
  keep JSON as LONGTEXT checked by JSON_VALID, engines/mariadb/migrations); a list is refused
  (MariaDB has no arrays: send `Json(list)` where the column holds a JSON array).

The MariaDB driver scans the text for its own placeholders with a naive parser (any quote
character toggles a literal, even inside a backticked name or a comment). A name holding an
odd number of `'` or `"` is therefore followed by a comment that restores the driver's state
(`/*'*/`), and the rendered text is checked against a port of that scanner: where the driver
would see other placeholders than ours, the statement is refused before it is sent.
"""

from __future__ import annotations

import functools
import json
import math
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import ProgrammingError, sql
from psycopg.types.json import Json, Jsonb

Params = Mapping[str, Any] | Sequence[Any]

# what the driver can send as a parameter (it would quote the str() of anything else)
_PARAMETER_TYPES = (str, bytes, bytearray, date, time, timedelta, Decimal, float, int)

# psycopg's placeholder syntax (psycopg/_queries.py): %%, %s, %(name)s, %b, %t, and mistakes
_PERCENT = re.compile(r"%(?:\(([^)]+)\).|.)?", re.DOTALL)


@dataclass(frozen=True)
class Param:
    """A slot bound from the caller's parameters: a position or a name."""

    key: int | str


@dataclass(frozen=True)
class Value:
    """A slot bound from a `Literal` of the query."""

    value: Any


Slot = Param | Value

# positional slots shared by every statement (a kept DELETE by 1,000 keys: 72 KB less each)
_POSITIONS = tuple(Param(i) for i in range(2_048))


@dataclass(frozen=True)
class Rendered:
    """MariaDB SQL with `?` placeholders, and what each of them takes, in order."""

    text: str
    slots: tuple[Slot, ...]


def render(query: sql.Composable | str, params: Params | None) -> Rendered:
    """The text and slots of a query; `params` decides psycopg's parsing of `%` (see module).
    A long statement is rendered once while its object lives (`_RENDERED`)."""
    parse = params is not None
    known = _RENDERED.get(id(query)) if type(query) is not str else None
    if known is not None and known[0]() is query and known[1] == parse:
        check(known[2], params)
        return known[2]
    out = _Builder(parse=parse)
    _walk(query, out)
    rendered = out.result()
    check(rendered, params)
    _check_driver_scan(rendered.text, out.marks)
    if type(query) is not str and len(rendered.text) >= _REMEMBERED_FROM:
        key = id(query)
        _RENDERED[key] = (weakref.ref(query, functools.partial(_forget, key)), parse, rendered)
    return rendered


# Statements composed once and run again and again (a batch's locked re-check, 60 KB with the
# clock; the archive's DELETE by 1,000 keys) are rendered once: walking their trees and the
# driver's scan were 5 of the 36 s of Python in the MariaDB archive at 189,728 patients. Keyed
# by the object's identity, checked through a weak reference (an id is reused once its object
# is gone), forgotten when the object is.
_REMEMBERED_FROM = 1_000  # characters
_RENDERED: dict[int, tuple[weakref.ref[Any], bool, Rendered]] = {}


def _forget(key: int, gone: weakref.ref[Any]) -> None:
    known = _RENDERED.get(key)
    if known is not None and known[0] is gone:
        del _RENDERED[key]


def bind(rendered: Rendered, params: Params | None) -> tuple[Any, ...]:
    """The values of the `?` placeholders, in order."""
    return tuple(_checked(_value(slot, params)) for slot in rendered.slots)


def identifier(names: Sequence[str]) -> str:
    """`a`.`b`, a backtick inside doubled; a name with a NUL character is refused."""
    for name in names:
        if "\x00" in name:
            raise ProgrammingError("a MariaDB name cannot contain a NUL character")
    text = ".".join("`" + name.replace("`", "``") + "`" for name in names)
    return text + _restore_driver_state(text)


# -- walking the tree ---------------------------------------------------------------------------


_LEAVES = (sql.Identifier, sql.Literal, sql.Placeholder)


def _walk(query: sql.Composable | str, out: _Builder) -> None:
    """Text and the leaves Identifier, Literal, Placeholder, in order, into `out` (by exact
    type first: isinstance() through psycopg's abstract base class is slow on large trees)."""
    kind = type(query)
    if kind is sql.Composed:
        for part in query:  # type: ignore[union-attr]  # a Composed iterates over its parts
            _walk(part, out)
    elif kind is str:
        out.text(query)  # type: ignore[arg-type]
    elif kind is sql.SQL:
        out.text(query.as_string(None))  # type: ignore[union-attr]
    elif kind in _LEAVES:
        out.leaf(query)
    else:
        _walk_subclass(query, out)


def _walk_subclass(query: sql.Composable | str, out: _Builder) -> None:
    if isinstance(query, sql.Composed):
        for part in query:
            _walk(part, out)
    elif isinstance(query, str):
        out.text(query)
    elif isinstance(query, sql.SQL):
        out.text(query.as_string(None))
    elif isinstance(query, _LEAVES):
        out.leaf(query)
    else:
        raise ProgrammingError(f"cannot render {type(query).__name__} as MariaDB SQL")


class _Builder:
    """Accumulates the text, the slots and where each `?` stands."""

    def __init__(self, *, parse: bool) -> None:
        self.parse = parse
        self.parts: list[str] = []
        self.pending: list[str] = []  # adjacent texts: psycopg parses `%` over the whole text
        self.slots: list[Slot] = []
        self.marks: list[int] = []
        self.length = 0
        self.style: type | None = None
        self.position = 0

    def text(self, text: str) -> None:
        self.pending.append(text)

    def leaf(self, piece: Any) -> None:
        self._flush()
        if isinstance(piece, sql.Identifier):
            self._write(identifier(piece._obj))
        elif isinstance(piece, sql.Literal):
            self._literal(piece._obj)
        else:
            self._placeholder(piece._obj or None)

    def result(self) -> Rendered:
        self._flush()
        return Rendered("".join(self.parts), tuple(self.slots))

    def _flush(self) -> None:
        if self.pending:
            text, self.pending = "".join(self.pending), []
            self._text(text)

    def _write(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def _slot(self, slot: Slot) -> None:
        self.marks.append(self.length)
        self.slots.append(slot)
        self._write("?")

    def _literal(self, value: Any) -> None:
        inline = _sql_constant(value)
        if inline is None:
            self._slot(Value(value))
        else:
            self._write(inline)

    def _placeholder(self, name: str | None) -> None:
        if not self.parse:
            raise ProgrammingError("the query has placeholders but no parameters were passed")
        key: int | str = self.position if name is None else name
        if self.style is not None and self.style is not type(key):
            raise ProgrammingError("positional and named placeholders cannot be mixed")
        self.style = type(key)
        self.position += name is None
        self._slot(_POSITIONS[key] if type(key) is int and key < len(_POSITIONS) else Param(key))

    def _text(self, text: str) -> None:
        if not self.parse or "%" not in text:
            self._write(text)
            return
        start = 0
        for match in _PERCENT.finditer(text):
            self._write(text[start : match.start()])
            self._percent(match)
            start = match.end()
        self._write(text[start:])

    def _percent(self, match: re.Match[str]) -> None:
        found = match.group(0)
        if found == "%%":
            self._write("%")
        elif found in ("%", "%("):
            raise ProgrammingError(f"incomplete placeholder: {found!r}")
        elif found == "% ":
            raise ProgrammingError(
                "incomplete placeholder: '%'; to use '%' as an operator, double it: '%%'"
            )
        elif found[-1] not in "sbt":
            raise ProgrammingError(
                f"only '%s', '%b', '%t' are allowed as placeholders, got {found!r}"
            )
        else:
            self._placeholder(match.group(1))


def _sql_constant(value: Any) -> str | None:
    """A number, a boolean or None written as SQL; None for values that become parameters."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return _signed(str(value))
    if isinstance(value, float | Decimal):
        if not math.isfinite(value):
            raise ProgrammingError("MariaDB has no NaN or infinite numbers")
        return _signed(repr(value) if isinstance(value, float) else format(value, "f"))
    return None


def _signed(text: str) -> str:
    """A leading space before a minus sign, so that `x -{}` never writes `--` (a comment)."""
    return " " + text if text.startswith("-") else text


# -- parameters ---------------------------------------------------------------------------------


def check(rendered: Rendered, params: Params | None) -> Params | None:
    """`params` fit the query's placeholders (psycopg's rules and messages); returned as is."""
    keys = [slot.key for slot in rendered.slots if isinstance(slot, Param)]
    if params is None:
        return None
    if isinstance(params, str | bytes) or not isinstance(params, Sequence | Mapping):
        raise TypeError(
            f"query parameters should be a sequence or a mapping, got {type(params).__name__}"
        )
    if isinstance(params, Mapping):
        _check_mapping(keys, params)
    else:
        _check_sequence(keys, params)
    return params


def _check_sequence(keys: list[int | str], params: Sequence[Any]) -> None:
    if keys and isinstance(keys[0], str):
        raise TypeError("named placeholders require a mapping of parameters")
    if len(keys) != len(params):
        raise ProgrammingError(
            f"the query has {len(keys)} placeholders but {len(params)} parameters were passed"
        )


def _check_mapping(keys: list[int | str], params: Mapping[str, Any]) -> None:
    if keys and isinstance(keys[0], int):
        raise TypeError("positional placeholders (%s) require a sequence of parameters")
    missing = sorted({str(key) for key in keys if key not in params})
    if missing:
        raise ProgrammingError(f"query parameter missing: {', '.join(missing)}")


def _value(slot: Slot, params: Params | None) -> Any:
    if isinstance(slot, Value):
        return slot.value
    assert params is not None  # a Param slot exists only when parameters were passed
    if isinstance(slot.key, str):
        assert isinstance(params, Mapping)
        return params[slot.key]
    assert not isinstance(params, Mapping)
    return params[slot.key]


def _checked(value: Any) -> Any:
    """The value as the driver takes it: booleans as 1/0, JSON documents and arrays as JSON
    text; unknown types refused."""
    if value is None or isinstance(value, _PARAMETER_TYPES):
        return int(value) if isinstance(value, bool) else value
    if isinstance(value, UUID):  # the tool's run ids: CHAR(36), the canonical text
        return str(value)
    if isinstance(value, Json | Jsonb):
        try:
            return json.dumps(value.obj, allow_nan=False)
        except (TypeError, ValueError):
            raise ProgrammingError(
                "cannot adapt a JSON document holding values that are not JSON to a MariaDB "
                "parameter"
            ) from None
    raise ProgrammingError(f"cannot adapt type {type(value).__name__!r} to a MariaDB parameter")


# -- the driver's own scan ----------------------------------------------------------------------

_QUOTE_BITS = {"'": 1, '"': 2, "`": 4}
# what matters to the driver's scanner (mariadb_parser.c, MrdbParser_parse) in each state; a
# `?` outside literals and comments is a placeholder and changes nothing else (see _Scanner)
_NEXT_PLAIN = re.compile(r"['\"`/#\-%]")
_NEXT_QUOTE = re.compile(r"['\"`]")
_NEXT_IN_COMMENT = re.compile(r"['\"`*]")
_NEXT_IN_LINE_COMMENT = re.compile(r"['\"`\n/#\-]")
_QUESTION_MARK = re.compile(r"\?")


def _restore_driver_state(text: str) -> str:
    """A comment holding one `'` / `"` when the name holds an odd number of them."""
    odd = "".join(q for q in "'\"" if text.count(q) % 2)
    return f"/*{odd}*/ " if odd else ""


def _check_driver_scan(text: str, marks: list[int]) -> None:
    if driver_placeholders(text) != marks:
        raise ProgrammingError(
            "the MariaDB driver would find other placeholders in this statement than the "
            "query has (an odd quote character in a string literal or comment of the SQL "
            "text, or a '%s', '%d', '%(' left in it): write it differently"
        )


def driver_placeholders(text: str) -> list[int]:
    """Where MariaDB Connector/Python 1.1's scanner finds placeholders, as offsets into `text`.

    A port of its `MrdbParser_parse`: a quote character toggles its literal flag in every state
    (even in a comment); outside literals and comments, `?`, `%s`, `%d` and `%(...)s` are
    placeholders. An executable comment (`/*!`, `/*M!`) is refused: its content depends on the
    server's version."""
    return _Scanner(text).run()


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.end = len(text) - 1
        self.quotes = 0  # a bit per quote character whose literal is open (_QUOTE_BITS)
        self.comment = False
        self.line_comment = False
        self.last = ""  # the driver's `lastchar`: the last character of plain text but `?`
        self.found: list[int] = []

    def at(self, i: int) -> str:
        return self.text[i] if 0 <= i < len(self.text) else "\x00"

    def run(self) -> list[int]:
        i = 0
        while i <= self.end:
            i = self.step(self.skip(i))
        return self.found

    def skip(self, i: int) -> int:
        """The next position where something can happen in the current state; in plain text,
        the `?` passed on the way are placeholders."""
        if self.quotes:
            return self._search(_NEXT_QUOTE, i)
        if self.comment:
            return self._search(_NEXT_IN_COMMENT, i)
        if self.line_comment:
            return self._search(_NEXT_IN_LINE_COMMENT, i)
        j = self._search(_NEXT_PLAIN, i)
        self.found.extend(m.start() for m in _QUESTION_MARK.finditer(self.text, i, j))
        self.last = self.text[i:j].replace("?", "")[-1:] or self.last
        return j

    def _search(self, pattern: re.Pattern[str], i: int) -> int:
        match = pattern.search(self.text, i)
        return match.start() if match else len(self.text)

    def step(self, i: int) -> int:
        if i > self.end:
            return i
        char = self.text[i]
        if char in _QUOTE_BITS:
            self.quotes ^= _QUOTE_BITS[char]
            return i + 1
        if self.quotes:
            return i + 1
        if self.comment:
            return self.in_comment(i)
        return self.plain(i)

    def in_comment(self, i: int) -> int:
        if self.at(i) == "*" and self.at(i + 1) == "/":
            self.comment = False
            return i + 2
        return i + 1

    def plain(self, i: int) -> int:
        if self.at(i) == "/" and self.at(i + 1) == "*":
            return self.comment_start(i + 2)
        if self.at(i) == "#":
            i += 1
            self.line_comment = True
        if self.at(i) == "-" == self.at(i + 1) and i + 2 < self.end and self.at(i + 2) == " ":
            i += 3
            self.line_comment = True
        if self.line_comment:
            if self.at(i) in ("\x00", "\n"):
                self.line_comment = False
            return i + 1
        return self.placeholder(i)

    def comment_start(self, i: int) -> int:
        if self.at(i) == "!" or (self.at(i) == "M" and self.at(i + 1) == "!"):
            raise ProgrammingError("executable comments (/*! and /*M!) are not supported")
        self.comment = True
        return i

    def placeholder(self, i: int) -> int:
        char, following = self.at(i), self.at(i + 1)
        if char == "?":
            self.found.append(i)
            return i + 1
        if char == "%" and self.last != "\\" and self._format_placeholder(i, following):
            self.found.append(-1 - i)  # never one of ours: ours are all `?`
            return i + 2
        self.last = char
        return i + 1

    def _format_placeholder(self, i: int, following: str) -> bool:
        return following in "sd" or (following == "(" and ")s" in self.text[i + 1 :])
