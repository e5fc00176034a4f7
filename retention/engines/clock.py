"""The legal clock's SQL that differs between engines: how dates are read, shifted, compared.

The expression compiler (`retention.policy.expr.compile`) and the plan's clock
(`retention.plan.clock`) write what every engine reads alike (CASE, AND/OR/NOT, comparisons,
IN, the layers of the clock's statement) and ask a :class:`ClockSQL` for the rest; each engine
implements it in its folder (`postgresql/clock.py`, `mariadb/clock.py`) and :func:`clock_sql`
picks the one of an open connection. Both compute README's clock semantics: months first,
clamped to the end of the month, then days; a null propagates; `greatest`/`least` ignore
nulls; a text date is read only when it is a real calendar day in its format; a date that
cannot be read is NULL and its subject undeterminable.

Where an engine cannot compute what PostgreSQL computes (MariaDB's calendar ends at
9999-12-31, where PostgreSQL goes on; a zero date inside an aggregate's expression), the
compiled value carries an `unknown` condition (:class:`Term`): the clock then makes the
subject undeterminable (kept and reported) rather than use a value that could be earlier.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from retention.engines import Connection, engine_of
from retention.engines.catalogue import ColumnKind
from retention.engines.sql import Composable

if TYPE_CHECKING:
    from retention.engines.dialect import Dialect

# the value types of a bound literal, by their PostgreSQL names
ValueType = Literal["text", "bigint", "numeric", "boolean", "date", "int"]
Extreme = Literal["greatest", "least"]


@dataclass(frozen=True)
class TextDateFormat:
    """A declared text date format: its shape as a regular expression (ASCII digits), its
    length, and where the year, month and day are (1-based start, length)."""

    pattern: str
    length: int
    year: tuple[int, int]
    month: tuple[int, int]
    day: tuple[int, int]


TEXT_DATE_FORMATS: dict[str, TextDateFormat] = {
    "YYYY-MM-DD": TextDateFormat("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", 10, (1, 4), (6, 2), (9, 2)),
    "DD/MM/YYYY": TextDateFormat("^[0-9]{2}/[0-9]{2}/[0-9]{4}$", 10, (7, 4), (4, 2), (1, 2)),
    "YYYYMMDD": TextDateFormat("^[0-9]{8}$", 8, (1, 4), (5, 2), (7, 2)),
}


class Binder(Protocol):
    """Where values go as parameters (`retention.policy.expr.Params`)."""

    def add(self, value: object, *, binary: bool = False) -> Composable: ...


@dataclass(frozen=True)
class Term:
    """A compiled sub-expression.

    `sql` is its value; for a duration on an engine without an interval type, its months, and
    `days` its days (NULL together). `unknown` is a condition, never NULL itself, true when the
    engine could not compute the value PostgreSQL computes: the clock then judges the subject
    undeterminable. None: always computed.
    """

    sql: Composable
    days: Composable | None = None
    unknown: Composable | None = None


class ClockSQL(Protocol):
    """The engine-specific SQL of the compiled clock (docs/ENGINES.md, 2.4)."""

    @property
    def rows(self) -> Dialect:
        """The engine's SQL of rows (`engine_of(conn).dialect`): the walks from a related
        row up to its subject (a polymorphic link's class filter)."""
        ...

    # -- values and arithmetic: the expression compiler -----------------------------------
    def bind(self, params: Binder, value: object, type_: ValueType) -> Composable:
        """`value` as a parameter of that type (`%(p1)s::date`, `CAST(%(p1)s AS DATE)`)."""
        ...

    def interval(self, params: Binder, unit: str, amount: int) -> Term:
        """A duration literal: `amount` `unit`s (years, months, weeks or days; a week is 7
        days)."""
        ...

    def shift(self, day: Term, op: str, interval: Term, *, interval_first: bool) -> Term:
        """`day + interval` or `day - interval` (`op`), written `interval + day` when
        `interval_first`: months first, clamped to the end of the month, then days. The
        result's `unknown` is the operation's own (the compiler adds its operands')."""
        ...

    def combine(self, left: Term, op: str, right: Term) -> Term:
        """`interval + interval` or `interval - interval` (`unknown`: as `shift`)."""
        ...

    def extreme(self, func: Extreme, args: Sequence[Composable]) -> Composable:
        """`greatest(...)` / `least(...)`: nulls ignored, NULL only when every argument is."""
        ...

    # -- reading columns --------------------------------------------------------------------
    def column_date(self, ref: Composable, kind: ColumnKind) -> Composable:
        """A date column's calendar day in the legal zone, NULL when it cannot be read
        (PostgreSQL `infinity`; MariaDB zero dates and zero months or days)."""
        ...

    def column_value(self, ref: Composable, kind: ColumnKind) -> Term:
        """A date column as an operand of an aggregate's expression (`unknown` when it cannot
        be read, where the engine says so through `unknown`)."""
        ...

    def enum_text(self, ref: Composable) -> Composable:
        """An enum column read as the text of its label (a filter compares it with text
        literals: PostgreSQL has no `enum = text`, and a label it does not know is an error
        there, where MariaDB compares the label's text)."""
        ...

    def missing(self, ref: Composable, kind: ColumnKind) -> Composable:
        """True when a date column (or a text one holding dates) holds no value (NULL), as
        opposed to an unreadable one."""
        ...

    def text_date(self, ref: Composable, fmt: str, params: Binder) -> Composable:
        """A date read strictly from text in `fmt` (a key of TEXT_DATE_FORMATS): NULL for
        anything that is not a real calendar day of the years 1 to 9999."""
        ...

    # -- the clock's statement --------------------------------------------------------------
    def subject_table(
        self, table: Composable, alias: Composable, *, in_key_order: bool
    ) -> Composable:
        """The subject table in the clock's FROM: `table AS alias`. `in_key_order`: the clock
        covers every subject and their key is the table's primary key; MariaDB then reads the
        table through it (its aggregates look each subject's rows up in key order, see
        engines/mariadb/clock.py); PostgreSQL as written."""
        ...

    def fence(self) -> Composable:
        """The clause ending a derived table that the planner must not merge into the query
        reading it (each layer's expressions computed once per subject)."""
        ...

    def add_days(self, day: Composable, days: Composable) -> Composable:
        """A date plus a whole number of days (a hold's extension)."""
        ...

    def due_unknown(self, raw: Composable, extended: Composable) -> Composable:
        """True when there is no due date: `raw` (the due expression) is NULL, or `extended`
        (`raw` plus the holds' extension) could not be computed."""
        ...

    def aggregate_date(self, value: Composable) -> Composable:
        """An aggregate row's date, from its compiled expression."""
        ...

    def aggregate_bad(self, value: Composable, lost: Composable) -> Composable:
        """Over a subject's rows: true when one of them has an unreadable date (`value`, the
        row's date column) or is `lost` (a boolean column: its date is unknown)."""
        ...

    def key_in(self, key: Composable, keys: Composable) -> Composable:
        """`key` is one of `keys`: on PostgreSQL an array (`= ANY(keys)`), on MariaDB a
        subquery of one column (`IN (keys)`)."""
        ...

    def any_of(self, expr: Composable, params: Binder, values: Sequence[object]) -> Composable:
        """`expr` equals one of `values`, each a parameter."""
        ...

    def holds_join(self, holds: Composable, covers: Composable, key: Composable) -> Composable:
        """`LEFT JOIN (...) AS h ON ...` summing the holds rows (`covers`: the condition
        selecting those of the policy) per subject `key`: `h.held` (an active hold) and
        `h.extension` (days of released holds, each counted in the legal calendar)."""
        ...


# engine name -> the module of its ClockSQL, imported on first use (as engines/__init__ does)
_MODULES = {
    "postgresql": "retention.engines.postgresql.clock",
    "mariadb": "retention.engines.mariadb.clock",
    "mysql": "retention.engines.mariadb.clock",
}


def or_postgresql(dialect: ClockSQL | None) -> ClockSQL:
    """`dialect`, or PostgreSQL's when None (the engine the tool was built on)."""
    if dialect is not None:
        return dialect
    postgresql: ClockSQL = importlib.import_module(_MODULES["postgresql"]).CLOCK
    return postgresql


def clock_sql(conn: Connection) -> ClockSQL:
    """The clock's SQL for the engine `conn` belongs to, reading timestamps in the legal zone
    of that connection (`conn.info.timezone`, the zone its session was opened for)."""
    module = importlib.import_module(_MODULES[engine_of(conn).name])
    dialect: ClockSQL = module.for_connection(conn)
    return dialect
