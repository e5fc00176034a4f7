"""Candidate event dates of the tables of a record: their columns of date type, and text
columns holding dates in one of the formats a policy reads, with their range and share of
nulls (and, for text, of values that are no real calendar day)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from retention.catalog.introspect import Column, Table
from retention.engines import Connection, engine_of, sql
from retention.engines.clock import clock_sql
from retention.policy.expr import Params
from retention.policy.model import DATE_FORMATS

SAMPLE_ROWS = 100_000
TEXT_DATE_LENGTH = 12  # a text column longer than this is not taken for a date
MIN_READABLE = 0.5  # a text column is a date when at least half its values are real days
QName = tuple[str, str]


@dataclass(frozen=True)
class DateCandidate:
    """`table.column` as a date: of `rows` rows read, `nulls` NULL, `unreadable` not a real day
    in `format` (text only); `first` and `last` the range of the readable ones."""

    table: QName
    column: Column
    format: str | None
    rows: int
    nulls: int
    unreadable: int
    first: date | None
    last: date | None
    sampled: bool

    def share(self, count: int) -> float:
        return count / self.rows if self.rows else 0.0


def date_candidates(conn: Connection, table: Table) -> list[DateCandidate]:
    """The candidate dates of one table, read in one statement (about twice SAMPLE_ROWS rows
    spread over the table when it is estimated above SAMPLE_ROWS rows: `Sampler.spread_rows`).
    A date no calendar has (MariaDB's zero dates, `0000-00-00`) is an unreadable value."""
    wanted: list[tuple[Column, str | None]] = [
        (c, None) for c in table.columns.values() if c.is_date
    ]
    wanted += [
        (c, fmt)
        for c in table.columns.values()
        if c.is_text and c.max_length is not None and c.max_length <= TEXT_DATE_LENGTH
        for fmt in DATE_FORMATS
    ]
    if not wanted:
        return []
    names = list(dict.fromkeys(column.name for column, _ in wanted))
    spread = engine_of(conn).sampler.spread_rows(conn, table, names, SAMPLE_ROWS)
    source = sql.Identifier(*table.qname) if spread is None else spread.source
    dialect, params = clock_sql(conn), Params("t")
    parts: list[sql.Composable] = [sql.SQL("count(*)")]
    for column, fmt in wanted:
        ref = sql.Identifier(column.name)
        value = (
            dialect.text_date(ref, fmt, params)
            if fmt is not None
            else dialect.column_date(ref, column.kind)
        )
        parts += [
            sql.SQL("count({})").format(ref),
            sql.SQL("count({})").format(value),
            sql.SQL("min({})").format(value),
            sql.SQL("max({})").format(value),
        ]
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts), source)
    row = conn.execute(query, params.values or None).fetchone()
    assert row is not None
    rows = int(row[0])
    found: dict[str, DateCandidate] = {}
    for i, (column, fmt) in enumerate(wanted):
        present, readable, first, last = row[1 + 4 * i : 5 + 4 * i]
        if fmt is not None and (not present or readable < MIN_READABLE * present):
            continue
        best = found.get(column.name)
        if best is not None and best.rows - best.nulls - best.unreadable >= readable:
            continue
        found[column.name] = DateCandidate(
            table.qname,
            column,
            fmt,
            rows,
            rows - int(present),
            int(present) - int(readable),
            first,
            last,
            spread is not None,
        )
    return list(found.values())
