"""The clock's SQL on PostgreSQL: the reference the Python evaluator follows.

`date + interval` (months first, clamped, then days) and `GREATEST`/`LEAST` (nulls ignored)
are PostgreSQL's own; timestamps become days of the legal calendar through the session's
`TimeZone` (pinned at connect); `infinity` and `-infinity` are the unreadable dates.
"""

from __future__ import annotations

from collections.abc import Sequence

from retention.engines import Connection, sql
from retention.engines.catalogue import ColumnKind
from retention.engines.clock import TEXT_DATE_FORMATS, Binder, Extreme, Term, ValueType
from retention.engines.postgresql.dialect import DIALECT


class PostgreSQLClock:
    rows = DIALECT  # the engine's SQL of rows (its walks up to the subject)

    def bind(self, params: Binder, value: object, type_: ValueType) -> sql.Composable:
        return sql.SQL("{}::{}").format(params.add(value), sql.SQL(type_))

    def interval(self, params: Binder, unit: str, amount: int) -> Term:
        return Term(
            sql.SQL("make_interval({} => {})").format(
                sql.SQL(unit), self.bind(params, amount, "int")
            )
        )

    def shift(self, day: Term, op: str, interval: Term, *, interval_first: bool) -> Term:
        left, right = (interval, day) if interval_first else (day, interval)
        return Term(sql.SQL("({} {} {})::date").format(left.sql, sql.SQL(op), right.sql))

    def combine(self, left: Term, op: str, right: Term) -> Term:
        return Term(sql.SQL("({} {} {})").format(left.sql, sql.SQL(op), right.sql))

    def extreme(self, func: Extreme, args: Sequence[sql.Composable]) -> sql.Composable:
        return sql.SQL("{}({})").format(sql.SQL(func.upper()), sql.SQL(", ").join(args))

    def column_date(self, ref: sql.Composable, kind: ColumnKind) -> sql.Composable:
        return sql.SQL("(CASE WHEN isfinite({r}) THEN ({r})::date END)").format(r=ref)

    def column_value(self, ref: sql.Composable, kind: ColumnKind) -> Term:
        # `infinity` and `-infinity` are unreadable, as MariaDB's zero dates: a filter that
        # reads one cannot tell whether its row counts (compared as values, `-infinity` left
        # the row out, and its subject could be due early); a value reading one is unknown
        # (the aggregate's `bad` catches an infinite value too)
        unreadable = sql.SQL("({r} IS NOT NULL AND NOT isfinite({r}))").format(r=ref)
        return Term(sql.SQL("({})::date").format(ref), unknown=unreadable)

    def enum_text(self, ref: sql.Composable) -> sql.Composable:
        return sql.SQL("({})::text").format(ref)

    def missing(self, ref: sql.Composable, kind: ColumnKind) -> sql.Composable:
        return sql.SQL("{} IS NULL").format(ref)

    def text_date(self, ref: sql.Composable, fmt: str, params: Binder) -> sql.Composable:
        """Nested CASEs because PostgreSQL does not promise the evaluation order of AND
        operands."""
        shape = TEXT_DATE_FORMATS[fmt]
        text = sql.SQL("btrim({})").format(ref)

        def part(span: tuple[int, int]) -> sql.Composable:
            return sql.SQL("substr({}, {}, {})::int").format(
                text, sql.Literal(span[0]), sql.Literal(span[1])
            )

        y, m, d = part(shape.year), part(shape.month), part(shape.day)
        last_day = sql.SQL(
            "extract(day from make_date({y}, {m}, 1) + interval '1 month' - interval '1 day')::int"
        ).format(y=y, m=m)
        return sql.SQL(
            "(CASE WHEN {text} ~ {pattern} THEN CASE WHEN {y} BETWEEN 1 AND 9999 AND {m} BETWEEN "
            "1 AND 12 THEN CASE WHEN {d} BETWEEN 1 AND {last} THEN make_date({y}, {m}, {d}) END "
            "END END)"
        ).format(text=text, pattern=sql.Literal(shape.pattern), y=y, m=m, d=d, last=last_day)

    def subject_table(
        self, table: sql.Composable, alias: sql.Composable, *, in_key_order: bool
    ) -> sql.Composable:
        return sql.SQL("{} AS {}").format(table, alias)

    def fence(self) -> sql.Composable:
        # OFFSET 0 keeps PostgreSQL from flattening the subquery into the query reading it
        return sql.SQL("OFFSET 0")

    def add_days(self, day: sql.Composable, days: sql.Composable) -> sql.Composable:
        return sql.SQL("{} + {}").format(day, days)

    def due_unknown(self, raw: sql.Composable, extended: sql.Composable) -> sql.Composable:
        # a date plus days is computed whenever the date is (PostgreSQL's dates go far beyond
        # any due date)
        return sql.SQL("{} IS NULL").format(raw)

    def aggregate_date(self, value: sql.Composable) -> sql.Composable:
        return sql.SQL("({})::date").format(value)

    def aggregate_bad(self, value: sql.Composable, lost: sql.Composable) -> sql.Composable:
        return sql.SQL("bool_or(NOT isfinite({}) OR {})").format(value, lost)

    def key_in(self, key: sql.Composable, keys: sql.Composable) -> sql.Composable:
        return sql.SQL("{} = ANY({})").format(key, keys)

    def any_of(
        self, expr: sql.Composable, params: Binder, values: Sequence[object]
    ) -> sql.Composable:
        return sql.SQL("{} = ANY({})").format(expr, params.add(list(values)))

    def holds_join(
        self, holds: sql.Composable, covers: sql.Composable, key: sql.Composable
    ) -> sql.Composable:
        # `timestamptz::date`: the day in the session's TimeZone, the legal calendar's
        return sql.SQL(
            "LEFT JOIN (SELECT subject_key, bool_or(released_at IS NULL) AS held, "
            "coalesce(sum(released_at::date - held_since::date) "
            "FILTER (WHERE released_at IS NOT NULL), 0)::int AS extension "
            "FROM {holds} WHERE {covers} GROUP BY subject_key) AS h "
            "ON h.subject_key = {key}::text"
        ).format(holds=holds, covers=covers, key=key)


CLOCK = PostgreSQLClock()


def for_connection(conn: Connection) -> PostgreSQLClock:
    """The one PostgreSQL clock (the session's TimeZone carries the legal zone)."""
    return CLOCK
