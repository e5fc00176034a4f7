"""The clock's SQL on MariaDB (and MySQL 8), with PostgreSQL's semantics (docs/ENGINES.md, 2.4).

- **Durations** have no type of their own: a duration compiles to its months and its days, two
  integers (`Term.sql` and `Term.days`, NULL together); `date ± duration` is `DATE_ADD`/`DATE_SUB`
  by the months, then by the days, which clamps to the end of the month as PostgreSQL does.
- **The calendar ends at 9999-12-31** (and a month step may land in year 0): there `DATE_ADD` is
  NULL with a warning where PostgreSQL goes on. Such a step makes its value `unknown`
  (`Term.unknown`), which spreads to every expression using it; the clock then finds no due
  date and judges the subject undeterminable: kept and reported, never due earlier.
- **`GREATEST`/`LEAST` are NULL when any argument is**: `GREATEST(COALESCE(a, b, c),
  COALESCE(b, c, a), COALESCE(c, a, b))` ignores nulls as PostgreSQL does.
- **Zero dates** (`0000-00-00`) and zero months or days (`2020-00-10`), which MariaDB stores under
  its default `sql_mode`, are unreadable whatever the session's `sql_mode`: `MONTH(d) = 0 OR
  DAY(d) = 0` is tested first, and a value the calendar cannot shift (`DATE_ADD(d, INTERVAL 0
  DAY)` NULL: year 0, `2020-02-30` under ALLOW_INVALID_DATES) is unreadable too. A missing date
  is `MONTH(d) IS NULL`, never `d IS NULL`, which matches zero dates of a NOT NULL column in a
  WHERE clause.
- **DATETIME** has no zone: its day is read as is (wall time in the legal zone). **TIMESTAMP** is
  stored in UTC: its day in the legal zone is computed from `UNIX_TIMESTAMP(ts)` (independent of
  the session's `time_zone`) plus the zone's UTC offset at that instant, taken from a table of
  the zone's transitions computed here by `zoneinfo` and written as a CASE (a binary search over
  the transitions of 1970-2106, TIMESTAMP's range): the server's time zone tables are never
  needed (they are empty on most servers).
- **Text dates**: `REGEXP` on the trimmed text (and its length: PCRE's `$` also matches before a
  final newline), `SUBSTRING` + `CAST(... AS SIGNED)`, the month's last day from `LAST_DAY`, and
  the day computed from 0001-01-01 by `DATE_ADD` (`MAKEDATE` reads years 0-99 as 2000-2069 and
  1970-1999; `STR_TO_DATE` is lenient or strict depending on `sql_mode`: neither is used). Nested
  CASEs keep the evaluation order.
- **Subjects in key order**: the clock over every subject reads the subject table through its
  primary key when that is the policy's key (`subject_table`): its aggregates' per-subject
  lookups (split materialization) then follow the key, not the order of whichever covering
  index the optimizer found smallest.
- A text comparison follows the collation of the column (or of the connection), often
  case-insensitive and ignoring trailing spaces, where PostgreSQL compares exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from retention.engines import Connection, sql
from retention.engines.catalogue import ColumnKind
from retention.engines.clock import TEXT_DATE_FORMATS, Binder, Extreme, Term, ValueType
from retention.engines.mariadb.dialect import DIALECT
from retention.errors import DatabaseError

_NULL = sql.SQL("NULL")
_CASTS: dict[str, str] = {
    "date": "DATE",
    "bigint": "SIGNED",
    "int": "SIGNED",
    "numeric": "DECIMAL(65, 30)",
    "text": "CHAR",
}
_MONTHS = {"years": 12, "months": 1}
_DAYS = {"weeks": 7, "days": 1}
# TIMESTAMP's range: 1970 to 2038, to 2106 on MariaDB 11.5+ (64-bit)
_EPOCH_END = 2**32
# the largest LIMIT: a derived table with a LIMIT is never merged into the query reading it
_FENCE = sql.SQL("LIMIT 18446744073709551615")


class MariaDBClock:
    """The clock's SQL for a session whose dates are read in `zone` (the legal calendar's)."""

    rows = DIALECT  # the engine's SQL of rows (its walks up to the subject)

    def __init__(self, zone: str) -> None:
        self.zone = zone

    # -- values and arithmetic ------------------------------------------------------------------
    def bind(self, params: Binder, value: object, type_: ValueType) -> sql.Composable:
        """A typed parameter: a date or a number sent as text stays text unless cast; a
        boolean is the driver's 1/0 (MariaDB's booleans are integers)."""
        if type_ == "boolean":
            return params.add(value)
        return sql.SQL("CAST({} AS {})").format(params.add(value), sql.SQL(_CASTS[type_]))

    def interval(self, params: Binder, unit: str, amount: int) -> Term:
        if unit not in _MONTHS and unit not in _DAYS:
            raise ValueError(f"unknown unit of a duration: {unit!r}")
        months, days = amount * _MONTHS.get(unit, 0), amount * _DAYS.get(unit, 0)
        return Term(self.bind(params, months, "int"), self.bind(params, days, "int"))

    def shift(self, day: Term, op: str, interval: Term, *, interval_first: bool) -> Term:
        function = sql.SQL("DATE_ADD" if op == "+" else "DATE_SUB")
        months, days = interval.sql, interval.days or _NULL
        by_months = sql.SQL("{}({}, INTERVAL {} MONTH)").format(function, day.sql, months)
        by_days = sql.SQL("{}({}, INTERVAL {} DAY)").format(function, by_months, days)
        # a step beyond 9999-12-31 (NULL) or into year 0, from a date and a duration
        overflow = sql.SQL(
            "({day} IS NOT NULL AND {months} IS NOT NULL AND "
            "(COALESCE(YEAR({a}), 0) = 0 OR COALESCE(YEAR({b}), 0) = 0))"
        ).format(day=day.sql, months=months, a=by_months, b=by_days)
        return Term(by_days, unknown=overflow)

    def combine(self, left: Term, op: str, right: Term) -> Term:
        operator = sql.SQL(op)
        return Term(
            sql.SQL("({} {} {})").format(left.sql, operator, right.sql),
            sql.SQL("({} {} {})").format(left.days or _NULL, operator, right.days or _NULL),
        )

    def extreme(self, func: Extreme, args: Sequence[sql.Composable]) -> sql.Composable:
        if len(args) == 1:
            return sql.SQL("({})").format(args[0])
        # each argument first in turn: NULL only where every argument is
        rotations = [
            sql.SQL("COALESCE({})").format(sql.SQL(", ").join([*args[i:], *args[:i]]))
            for i in range(len(args))
        ]
        return sql.SQL("{}({})").format(sql.SQL(func.upper()), sql.SQL(", ").join(rotations))

    # -- reading columns ------------------------------------------------------------------------
    def column_date(self, ref: sql.Composable, kind: ColumnKind) -> sql.Composable:
        if kind is ColumnKind.TIMESTAMP:
            day = _local_day(sql.SQL("UNIX_TIMESTAMP({})").format(ref), self.zone)
        else:
            day = sql.SQL("DATE_ADD({}, INTERVAL 0 DAY)").format(ref)
            if kind is ColumnKind.DATETIME:
                day = sql.SQL("DATE({})").format(day)
        zero = sql.SQL("(CASE WHEN MONTH({r}) = 0 OR DAY({r}) = 0 THEN NULL ELSE {day} END)")
        return zero.format(r=ref, day=day)

    def column_value(self, ref: sql.Composable, kind: ColumnKind) -> Term:
        unreadable = sql.SQL(
            "({r} IS NOT NULL AND (MONTH({r}) = 0 OR DAY({r}) = 0 "
            "OR DATE_ADD({r}, INTERVAL 0 DAY) IS NULL))"
        ).format(r=ref)
        return Term(self.column_date(ref, kind), unknown=unreadable)

    def enum_text(self, ref: sql.Composable) -> sql.Composable:
        return ref  # compared with text, an enum is its label's text already

    def missing(self, ref: sql.Composable, kind: ColumnKind) -> sql.Composable:
        if kind is ColumnKind.TEXT:
            return sql.SQL("{} IS NULL").format(ref)
        return sql.SQL("MONTH({}) IS NULL").format(ref)

    def text_date(self, ref: sql.Composable, fmt: str, params: Binder) -> sql.Composable:
        shape = TEXT_DATE_FORMATS[fmt]
        text = sql.SQL("TRIM({})").format(ref)

        def part(span: tuple[int, int]) -> sql.Composable:
            return sql.SQL("CAST(SUBSTRING({}, {}, {}) AS SIGNED)").format(
                text, sql.SQL(str(span[0])), sql.SQL(str(span[1]))
            )

        y, m, d = part(shape.year), part(shape.month), part(shape.day)
        first = sql.SQL(
            "DATE_ADD(DATE '0001-01-01', INTERVAL ({y} - 1) * 12 + {m} - 1 MONTH)"
        ).format(y=y, m=m)
        return sql.SQL(
            "(CASE WHEN CHAR_LENGTH({text}) = {length} AND {text} REGEXP {pattern} THEN "
            "CASE WHEN {y} BETWEEN 1 AND 9999 AND {m} BETWEEN 1 AND 12 THEN "
            "CASE WHEN {d} BETWEEN 1 AND DAY(LAST_DAY({first})) "
            "THEN DATE_ADD({first}, INTERVAL {d} - 1 DAY) END END END)"
        ).format(
            text=text,
            length=sql.SQL(str(shape.length)),
            pattern=params.add(shape.pattern),
            y=y,
            m=m,
            d=d,
            first=first,
        )

    # -- the clock's statement --------------------------------------------------------------
    def subject_table(
        self, table: sql.Composable, alias: sql.Composable, *, in_key_order: bool
    ) -> sql.Composable:
        # Over every subject, split materialization makes each aggregate (the last stay, the
        # last consultation) a LATERAL DERIVED table: an index lookup of the subject's rows,
        # for each subject in the order the clock reads them. Left to itself, the optimizer
        # read the patients through their smallest covering index (the doctor's): lookups in
        # doctor order, random reads once the tables outgrow the buffer pool (the exposure
        # after a minimisation at 758,912 patients: 127.8 s, 23 s in key order; see
        # bench/RESULTS.md). In key order, the lookups walk the children's key index in order.
        if not in_key_order:
            return sql.SQL("{} AS {}").format(table, alias)
        return sql.SQL("{} AS {} FORCE INDEX (PRIMARY)").format(table, alias)

    def fence(self) -> sql.Composable:
        return _FENCE

    def add_days(self, day: sql.Composable, days: sql.Composable) -> sql.Composable:
        return sql.SQL("DATE_ADD({}, INTERVAL {} DAY)").format(day, days)

    def due_unknown(self, raw: sql.Composable, extended: sql.Composable) -> sql.Composable:
        # NULL as well when the holds' extension goes past 9999-12-31
        return sql.SQL("{} IS NULL").format(extended)

    def aggregate_date(self, value: sql.Composable) -> sql.Composable:
        return sql.SQL("({})").format(value)

    def aggregate_bad(self, value: sql.Composable, lost: sql.Composable) -> sql.Composable:
        # an unreadable date made its row `lost` already (Term.unknown of column_value)
        return sql.SQL("MAX({})").format(lost)

    def key_in(self, key: sql.Composable, keys: sql.Composable) -> sql.Composable:
        return sql.SQL("{} IN ({})").format(key, keys)

    def any_of(
        self, expr: sql.Composable, params: Binder, values: Sequence[object]
    ) -> sql.Composable:
        if not values:
            return sql.SQL("false")
        return sql.SQL("{} IN ({})").format(
            expr, sql.SQL(", ").join(params.add(value) for value in values)
        )

    def holds_join(
        self, holds: sql.Composable, covers: sql.Composable, key: sql.Composable
    ) -> sql.Composable:
        """The tool's own tables keep instants as DATETIME(6) in UTC: each is read as a day of
        the legal calendar through the zone's offsets, as a TIMESTAMP is."""
        released, since = (
            _local_day(
                sql.SQL("TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {})").format(
                    sql.Identifier(name)
                ),
                self.zone,
            )
            for name in ("released_at", "held_since")
        )
        return sql.SQL(
            "LEFT JOIN (SELECT subject_key, MAX(released_at IS NULL) AS held, "
            "CAST(COALESCE(SUM(CASE WHEN released_at IS NOT NULL THEN DATEDIFF({released}, "
            "{since}) END), 0) AS SIGNED) AS extension "
            "FROM {holds} WHERE {covers} GROUP BY subject_key) AS h "
            "ON h.subject_key = CAST({key} AS CHAR)"
        ).format(released=released, since=since, holds=holds, covers=covers, key=key)


_SHIFT_DAYS = 1_000_000  # 2,700 years: any instant a TIMESTAMP or DATETIME holds is after -SHIFT


def _local_day(epoch: sql.Composable, zone: str) -> sql.Composable:
    """The day of the legal calendar at `epoch` (seconds since 1970-01-01 UTC)."""
    transitions, offsets = zone_offsets(zone)
    local = sql.SQL("({} + {})").format(
        epoch, _offset_case(epoch, transitions, offsets, 0, len(offsets) - 1)
    )
    # the floor of local / 86400 by DIV (exact: MySQL rounds x / 86400 to 4 decimals before a
    # FLOOR, the last 4 s of a day reading as the next day) of a value made positive, so that
    # DIV's truncation is the floor: `local` (a CASE of the zone's offsets) appears once
    return sql.SQL(
        "DATE_ADD(DATE '1970-01-01', INTERVAL (({} + {shift} * 86400) DIV 86400 - {shift}) DAY)"
    ).format(local, shift=sql.SQL(str(_SHIFT_DAYS)))


def _offset_case(
    epoch: sql.Composable, transitions: tuple[int, ...], offsets: tuple[int, ...], lo: int, hi: int
) -> sql.Composable:
    """The UTC offset in force at `epoch`, among `offsets[lo..hi]`: a binary search whose
    bounds are the transitions (integers computed here, never values from data or policies)."""
    if lo == hi:
        return sql.SQL(str(int(offsets[lo])))
    mid = (lo + hi + 1) // 2  # offsets[mid] is in force from transitions[mid - 1] on
    return sql.SQL("CASE WHEN {} < {} THEN {} ELSE {} END").format(
        epoch,
        sql.SQL(str(int(transitions[mid - 1]))),
        _offset_case(epoch, transitions, offsets, lo, mid - 1),
        _offset_case(epoch, transitions, offsets, mid, hi),
    )


@lru_cache(maxsize=8)
def zone_offsets(zone: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The zone's UTC offsets in seconds from 1970 to 2106 (TIMESTAMP's range): `offsets[0]`
    in force before `transitions[0]`, `offsets[i]` from `transitions[i - 1]` (seconds since
    the epoch) on. Found by reading the offset day by day and bisecting each change to the
    second (no zone has changed twice within a day since 1970)."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DatabaseError(f"unknown time zone {zone!r}", hint="e.g. Europe/Paris") from None

    def offset(epoch: int) -> int:
        moment = datetime.fromtimestamp(epoch, UTC).astimezone(tz)
        return int((moment.utcoffset() or timedelta()).total_seconds())

    transitions: list[int] = []
    offsets = [offset(0)]
    day, start = 86_400, 0
    while start < _EPOCH_END:
        end = min(start + day, _EPOCH_END)
        if offset(end) != offsets[-1]:
            low, high = start, end  # offset(low) is the old offset, offset(high) the new
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == offsets[-1] else (low, middle)
            transitions.append(high)
            offsets.append(offset(high))
        start = end
    return tuple(transitions), tuple(offsets)


def for_zone(zone: str | tzinfo) -> MariaDBClock:
    """The clock reading dates in `zone` (a name, or a `ZoneInfo`)."""
    name = zone if isinstance(zone, str) else getattr(zone, "key", None)
    if not name:
        raise DatabaseError(f"the legal time zone {zone!r} has no name", hint="e.g. Europe/Paris")
    return MariaDBClock(name)


def for_connection(conn: Connection) -> MariaDBClock:
    """The clock of a MariaDB connection: its `info.timezone` is the legal zone its session
    was opened for (the session itself runs in UTC)."""
    return for_zone(conn.info.timezone)
