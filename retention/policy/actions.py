"""What each action is: one declaration per action, read by every layer.

The policy model (which actions exist, which take columns), the binder (which columns an action
can change), the passes (which phases share one pass), the workers (which batches run side by
side), `run` and the daemon (which keys to load), the approvals (which actions need them) and
the exposure report (which actions minimise) all read :data:`SPECS`, so that a new action or a
changed trait is written here once.

This module sits low in the import graph (it imports the catalogue's column type only): the
actions' code (:mod:`retention.actions`) is named by module path, imported on demand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal, Protocol

from retention.engines.catalogue import ColumnKind, enum_label
from retention.policy.expr.nodes import TextLit

if TYPE_CHECKING:
    from retention.catalog.introspect import Column

MIN_PSEUDONYM_LENGTH = 12

# The values a generalisation of a text column can change; any other value is left as it is
# (retention.rows.values). A text column none of whose values has that shape is refused.
TEXT_DATE_SHAPE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"  # '1975-06-21', or a partial '1975-00-00'
POSTAL_CODE_SHAPE = "^[0-9]{5}$"  # mainland, Corsica ('20xxx') and overseas ('97xxx')
# What `generalize ... to: department` leaves of a postal code ('75', '974', '2A'): done, not
# a value it could not change. A text date generalised ('1975-00-00') keeps TEXT_DATE_SHAPE.
DEPARTMENT_SHAPE = "^([0-9]{2}|9[78][0-9]|2[AB])$"


class ColumnParams(Protocol):
    """The parameters of one column of a phase that decide whether the action fits it (the
    policy model's `ColumnSpec`)."""

    @property
    def value(self) -> str | int | None: ...  # erase: neutral value
    @property
    def to(self) -> str | None: ...  # generalize: year, month, department, range
    @property
    def replace_with(self) -> str: ...  # scrub: tag or pseudonym


Refusal = tuple[str, str | None]  # what is wrong, hint


def _erase(params: ColumnParams, column: Column, label: str) -> Refusal | None:
    if column.not_null and params.value is None and column.default is None:
        return (
            f"{label} is NOT NULL and has no default",
            "give the neutral value: '- column: x' with 'value: ...'",
        )
    labels, value = column.enum_values, params.value
    if labels is not None and value is not None and enum_label(column, str(value)) is None:
        choices = ", ".join(str(TextLit(v)) for v in labels)  # as a policy writes them
        return (
            f"{label} is an enum: {params.value!r} is none of its labels",
            f"erase it to one of {choices}"
            + ("" if column.not_null else ", or to NULL (no 'value')"),
        )
    if value is not None and labels is None and (wrong := _unfit_value(column, value)):
        return (
            f"{label} cannot hold the value {value!r}: {wrong}",
            "give a value of the column's type"
            + ("" if column.not_null else ", or erase to NULL (no 'value')"),
        )
    return None


_BOOLEANS = frozenset({"true", "false", "t", "f", "yes", "no", "y", "n", "on", "off", "1", "0"})
_SET_MEMBER = re.compile(r"'((?:[^']|'')*)'")
_DAY = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?)?"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?"
)
_INTEGER = re.compile(r"[+-]?\d+")
# the integer types' ranges, signed and unsigned (PostgreSQL's names and MariaDB's)
_BITS = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}


def _unfit_value(column: Column, value: str | int) -> str | None:
    """Why an erase's `value` cannot be written to `column`, or None: found by `check`, not
    by each batch's statement failing at run time with the server's bare error (an outside
    review: a date 'zzz', 85 characters in a varchar(50), JSON that is not JSON...). Where it
    cannot tell (bytes, uuid, time, bit...), the value passes, and the server judges it."""
    text = str(value).strip()
    kind = column.kind
    if kind in (ColumnKind.DATE, ColumnKind.DATETIME, ColumnKind.TIMESTAMP):
        return _unfit_day(text, kind)
    if kind is ColumnKind.NUMBER:
        return _unfit_number(column, text)
    if kind is ColumnKind.TEXT:
        if column.base_type.lower() == "set":
            members = {m.replace("''", "'") for m in _SET_MEMBER.findall(column.type)}
            extra = [part for part in text.split(",") if part and part not in members]
            return f"{', '.join(map(repr, extra))} not in the set" if extra else None
        if column.max_length is not None and len(str(value)) > column.max_length:
            return f"{len(str(value))} characters, more than the column's {column.max_length}"
        return None
    if kind is ColumnKind.JSON:
        try:
            json.loads(text, parse_constant=_no_constant)
        except ValueError:
            return "not JSON"
        return None
    if kind is ColumnKind.BOOLEAN:
        return None if text.lower() in _BOOLEANS else "not a boolean (true or false)"
    return None


def _unfit_day(text: str, kind: ColumnKind) -> str | None:
    if text.startswith("0000-00-00") or text.lower() in ("infinity", "-infinity"):
        return None  # MariaDB's zero date ("unknown" in Mediboard); PostgreSQL's infinities
    found = _DAY.fullmatch(text)
    try:
        if found is None:
            raise ValueError
        date(int(found[1]), int(found[2]), int(found[3]))
        if found[4] is not None and (int(found[4]) > 23 or int(found[5]) > 59):
            raise ValueError
        if found[6] is not None and int(found[6]) > 59:
            raise ValueError
    except ValueError:
        return "not a date written YYYY-MM-DD" + (
            "" if kind is ColumnKind.DATE else " (a time may follow: YYYY-MM-DD HH:MM:SS)"
        )
    return None


def _unfit_number(column: Column, text: str) -> str | None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return "not a number"
    if not number.is_finite():
        return "not a finite number"
    base = column.base_type.lower()
    if column.unsigned and number < 0:
        return "negative, and the column is unsigned"
    if "int" not in base:
        return None
    if not _INTEGER.fullmatch(text):
        return "not an integer written in digits"
    bits = _BITS.get(base)
    if bits is None:
        return None
    low = 0 if column.unsigned else -(2 ** (bits - 1))
    high = 2**bits - 1 if column.unsigned else 2 ** (bits - 1) - 1
    if not low <= number <= high:
        return f"out of the range of {column.type} ({low} to {high})"
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is no JSON value")


def _enum(column: Column, label: str, action: str) -> Refusal | None:
    """An enum column holds only its labels, a set only its members: no pseudonym, tag or
    generalised value."""
    if column.enum_values is None and column.base_type.lower() == "set":
        return (
            f"{label} is a set: it holds only its members, and {action} would write another value",
            "erase it instead (to NULL, or with 'value:' some of its members)",
        )
    if column.enum_values is None:
        return None
    return (
        f"{label} is an enum: it holds only its labels, and {action} would write another value",
        "erase it instead (to NULL, or with 'value:' one of its labels)",
    )


def _pseudonymize(params: ColumnParams, column: Column, label: str) -> Refusal | None:
    if (enum := _enum(column, label, "pseudonymize")) is not None:
        return enum
    if column.is_json:
        return (
            f"{label} holds JSON: a pseudonym in its place would not be JSON",
            "scrub it (scrub replaces the personal values inside the JSON, with pseudonyms "
            "if 'replace_with: pseudonym'), or erase it",
        )
    if not column.is_text:
        return f"{label} cannot hold a pseudonym; pseudonymize works on text columns", None
    if column.max_length is not None and column.max_length < MIN_PSEUDONYM_LENGTH:
        return (
            f"{label} is too short for a pseudonym (at least {MIN_PSEUDONYM_LENGTH} characters)",
            "erase or generalize it instead",
        )
    return None


def _scrub(params: ColumnParams, column: Column, label: str) -> Refusal | None:
    if (enum := _enum(column, label, "scrub")) is not None:
        return enum
    if not (column.is_text or column.is_json):
        return f"{label} is not free text; scrub works on text and JSON columns", None
    return None


def _generalize(params: ColumnParams, column: Column, label: str) -> Refusal | None:
    if (enum := _enum(column, label, "generalize")) is not None:
        return enum
    if params.to in ("year", "month"):
        if column.is_date or (column.is_text and (column.max_length or 10) >= 4):
            return None
        return f"{label} is not a date; cannot generalize to {params.to}", None
    if params.to == "department":
        if column.is_text and (column.max_length or 5) >= 2:
            return None
        return f"{label} is not a postal code stored as text", None
    if params.to == "range" and not column.is_number:
        return f"{label} is not a number; cannot generalize to a range", None
    return None


def _any(params: ColumnParams, column: Column, label: str) -> Refusal | None:
    return None


def _generalized_shape(params: ColumnParams, column: Column) -> str | None:
    if not column.is_text:  # a date, a number: its type tells
        return None
    return TEXT_DATE_SHAPE if params.to in ("year", "month") else POSTAL_CODE_SHAPE


def _no_shape(params: ColumnParams, column: Column) -> str | None:
    return None


@dataclass(frozen=True)
class ActionSpec:
    """The traits of one action.

    - `on`: what a phase changes: values of named columns, or whole records (the subject's row
      and every related row).
    - `refuses`: why it cannot change a column of some type, and `shapes`: the values it can
      change in a column whose type alone does not tell (see :meth:`refusal`, :meth:`shape`).
    - `pseudonym_key`: whether it needs the pseudonymisation key: always, never, or only for
      columns with `replace_with: pseudonym`.
    - `together`: consecutive phases with this trait and the same due date form one pass, whose
      batches rewrite each row once (retention.plan.passes, retention.actions.together).
    - `side_by_side`: its batches may run on several connections at once (setting `workers`).
    - `minimises`: it reduces what a record reveals while keeping the record (exposure report).
    - `writes_by_key`: it reads rows and writes them back by primary key.
    - `implementation`: `module:Class` executing it (imported only when a phase runs).
    """

    name: str
    on: Literal["columns", "rows"]
    implementation: str
    pseudonym_key: Literal["always", "never", "replace_with"] = "never"
    together: bool = False
    side_by_side: bool = True
    minimises: bool = False
    writes_by_key: bool = False
    refuses: Callable[[ColumnParams, Column, str], Refusal | None] = _any
    shapes: Callable[[ColumnParams, Column], str | None] = _no_shape

    @property
    def on_columns(self) -> bool:
        return self.on == "columns"

    @property
    def removes_records(self) -> bool:
        """Whole records leave the database: approvals apply (retention.audit.approvals)."""
        return self.on == "rows"

    def needs_pseudonym_key(self, columns: Iterable[ColumnParams]) -> bool:
        """Whether a phase of this action on `columns` needs the pseudonymisation key."""
        if self.pseudonym_key == "replace_with":
            return any(c.replace_with == "pseudonym" for c in columns)
        return self.pseudonym_key == "always"

    def refusal(self, params: ColumnParams, column: Column) -> Refusal | None:
        """Why this action cannot change `column` (its type), or None when it can."""
        label = f"'{column.name}' ({column.type})"
        if column.generated:  # the server computes it: no UPDATE may write it
            return (
                f"{label} is a generated column: the server computes it from other columns, "
                "and no action can write it",
                "act on the columns it is computed from (it follows them)",
            )
        return self.refuses(params, column, label)

    def shape(self, params: ColumnParams, column: Column) -> str | None:
        """The pattern of the values this action can change in `column`, when its type alone
        does not tell (a text column generalised as a date or a postal code), else None."""
        return self.shapes(params, column)


SPECS: Mapping[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            "erase",
            "columns",
            "retention.actions.columns:Erase",
            together=True,
            minimises=True,
            refuses=_erase,
        ),
        ActionSpec(
            "pseudonymize",
            "columns",
            "retention.actions.pseudonymize:Pseudonymize",
            pseudonym_key="always",
            together=True,
            minimises=True,
            writes_by_key=True,
            refuses=_pseudonymize,
        ),
        ActionSpec(
            "generalize",
            "columns",
            "retention.actions.columns:Generalize",
            together=True,
            minimises=True,
            refuses=_generalize,
            shapes=_generalized_shape,
        ),
        ActionSpec(
            "scrub",
            "columns",
            "retention.actions.scrub:Scrub",
            pseudonym_key="replace_with",
            side_by_side=False,  # its batches share the analyser; a pass of its own
            minimises=True,
            writes_by_key=True,
            refuses=_scrub,
        ),
        # each archive batch writes, reads back and verifies a file of its own
        ActionSpec("archive", "rows", "retention.actions.archive:Archive"),
        ActionSpec("purge", "rows", "retention.actions.purge:Purge"),
    )
}

ACTIONS: tuple[str, ...] = tuple(SPECS)
COLUMN_ACTIONS: tuple[str, ...] = tuple(n for n, s in SPECS.items() if s.on_columns)
ROW_ACTIONS: tuple[str, ...] = tuple(n for n, s in SPECS.items() if not s.on_columns)


def spec_of(action: str) -> ActionSpec:
    """The spec of a known action (the policy model refuses any other name)."""
    return SPECS[action]
