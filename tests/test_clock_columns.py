"""How each engine's clock reads a date column: text dates in their formats, zero dates, DATETIME
as wall time, TIMESTAMP as a day of the legal calendar, the days of released holds.

Every test runs on PostgreSQL and on MariaDB (the `engine` fixture), on a real table, against
what Python reads from the same values (`zoneinfo` for the legal calendar).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retention.engines import Connection, sql
from retention.engines.catalogue import ColumnKind
from retention.engines.clock import TEXT_DATE_FORMATS, ClockSQL, clock_sql
from retention.engines.mariadb.clock import for_zone
from retention.policy.expr import Params
from retention.store.holds import covers

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ZONES = ["Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]
# a TIMESTAMP's range on MariaDB 10.11: 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC
EPOCHS = st.integers(1, 2**31 - 1)
# instants around the legal calendar's changes of offset (Europe/Paris, 2024): last second
# before and first second of the new offset, and the local midnights around them
PARIS_EDGES = [
    datetime(2024, 3, 31, 0, 59, 59, tzinfo=UTC),
    datetime(2024, 3, 31, 1, 0, 0, tzinfo=UTC),
    datetime(2024, 3, 30, 22, 59, 59, tzinfo=UTC),
    datetime(2024, 3, 30, 23, 0, 0, tzinfo=UTC),
    datetime(2024, 10, 26, 21, 59, 59, tzinfo=UTC),
    datetime(2024, 10, 26, 22, 0, 0, tzinfo=UTC),
    datetime(2024, 10, 27, 0, 59, 59, tzinfo=UTC),
    datetime(2024, 10, 27, 1, 0, 0, tzinfo=UTC),
    datetime(2024, 10, 27, 22, 59, 59, tzinfo=UTC),
    datetime(2024, 10, 27, 23, 0, 0, tzinfo=UTC),
    datetime(2006, 11, 27, 23, 30, 0, tzinfo=UTC),  # README: 00:30 on the 28th in Paris
]


@dataclass(frozen=True)
class Engine:
    name: str
    conn: Connection
    clock: Callable[[str], ClockSQL]  # the clock reading dates in that zone

    def one(self, query: sql.Composed, params: dict[str, object] | None = None) -> Any:
        row = self.conn.execute(query, params).fetchone()
        assert row is not None
        return row

    def run(self, statement: str, params: tuple[object, ...] = ()) -> None:
        self.conn.execute(statement, params or None)


@pytest.fixture(params=["postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest) -> Engine:
    conn: Connection = request.getfixturevalue(
        {"postgresql": "conn", "mariadb": "mariadb_conn"}[request.param]
    )
    if request.param == "postgresql":

        def clock(zone: str) -> ClockSQL:
            # PostgreSQL reads timestamptz in the session's TimeZone, pinned at connect
            conn.execute(sql.SQL("SET TimeZone = {}").format(sql.Literal(zone)))
            return clock_sql(conn)

        return Engine("postgresql", conn, clock)
    return Engine("mariadb", conn, for_zone)


# -- text dates -----------------------------------------------------------------------------------
def _python_reading(value: str | None, fmt: str) -> date | None:
    """A real calendar day of the years 1 to 9999 written in `fmt`, spaces around allowed."""
    if value is None:
        return None
    shape = TEXT_DATE_FORMATS[fmt]
    text = value.strip(" ")
    if not re.fullmatch(shape.pattern.strip("^$"), text):
        return None

    def part(span: tuple[int, int]) -> int:
        return int(text[span[0] - 1 : span[0] - 1 + span[1]])

    try:
        return date(part(shape.year), part(shape.month), part(shape.day))
    except ValueError:
        return None


def _written(day: date, fmt: str) -> str:
    y, m, d = f"{day.year:04d}", f"{day.month:02d}", f"{day.day:02d}"
    return {"YYYY-MM-DD": f"{y}-{m}-{d}", "DD/MM/YYYY": f"{d}/{m}/{y}", "YYYYMMDD": y + m + d}[fmt]


ODD_TEXTS = [
    "1975-00-00",
    "1980-13-45",
    "2023-02-29",
    "2024-02-29",
    "1900-02-29",
    "2000-02-29",
    " 2020-01-31 ",
    "2020-01-31\n",
    "\t2020-01-31",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "2020-1-31",
    "2020/01/31",
    "20200131x",
    "２０２０-01-31",
    "",
    "31/04/2021",
    "30/04/2021",
    "00/01/2020",
    "29/02/2100",
    "20210229",
    "20240229",
    "00000000",
]
texts = st.one_of(
    st.sampled_from(ODD_TEXTS),
    st.tuples(st.dates(), st.sampled_from(sorted(TEXT_DATE_FORMATS))).map(lambda t: _written(*t)),
    st.text(alphabet="0123456789-/ ", min_size=6, max_size=12),
)


@SETTINGS
@given(values=st.lists(texts, min_size=1, max_size=20))
def test_a_text_date_is_read_only_when_it_is_a_real_day_in_its_format(
    engine: Engine, values: list[str]
) -> None:
    engine.run("CREATE TABLE IF NOT EXISTS texts (id int PRIMARY KEY, v varchar(20))")
    engine.run("DELETE FROM texts")
    for i, value in enumerate([*values, None]):
        engine.run("INSERT INTO texts VALUES (%s, %s)", (i, value))
    clock, params = engine.clock("UTC"), Params()
    ref = sql.Identifier("v")
    columns = [clock.text_date(ref, fmt, params) for fmt in sorted(TEXT_DATE_FORMATS)]
    query = sql.SQL("SELECT id, v, {} FROM texts ORDER BY id").format(sql.SQL(", ").join(columns))
    rows = engine.conn.execute(query, params.values).fetchall()
    assert len(rows) == len(values) + 1
    for _, value, *read in rows:
        expected = [_python_reading(value, fmt) for fmt in sorted(TEXT_DATE_FORMATS)]
        assert list(read) == expected, value


# -- zero dates (MariaDB) --------------------------------------------------------------------
ZERO_DATES = ["0000-00-00", "2020-00-10", "2020-05-00", "0000-05-05", "2020-02-30"]


def test_zero_dates_and_impossible_days_are_unreadable_whatever_sql_mode_says(
    mariadb_conn: Connection,
) -> None:
    """MariaDB stores them (default sql_mode, ALLOW_INVALID_DATES, or rows written before a
    stricter mode): the clock reads none of them, never takes them for a missing date, and
    `d IS NULL` in a WHERE clause would have (the trap it avoids)."""
    conn = mariadb_conn
    conn.execute(
        "CREATE TABLE z (id int PRIMARY KEY, d date NOT NULL, dt datetime NOT NULL, "
        "ts timestamp NULL, n date NULL)"
    )
    conn.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
    for i, day in enumerate(ZERO_DATES):
        stamp = "0000-00-00 00:00:00" if i == 0 else None  # TIMESTAMP's zero value
        conn.execute(
            "INSERT INTO z VALUES (%s, %s, %s, %s, NULL)", (i, day, day + " 10:00:00", stamp)
        )
    conn.execute("INSERT INTO z VALUES (9, '2020-05-05', '2020-05-05 23:59:59', NULL, NULL)")
    clock = for_zone("Europe/Paris")
    read = sql.SQL(", ").join(
        part
        for column, kind in (
            ("d", ColumnKind.DATE),
            ("dt", ColumnKind.DATETIME),
            ("ts", ColumnKind.TIMESTAMP),
            ("n", ColumnKind.DATE),
        )
        for part in (
            clock.column_date(sql.Identifier(column), kind),
            clock.missing(sql.Identifier(column), kind),
            clock.column_value(sql.Identifier(column), kind).unknown or sql.SQL("NULL"),
        )
    )
    rows = {row[0]: row[1:] for row in conn.execute(sql.SQL("SELECT id, {} FROM z").format(read))}
    for i in range(len(ZERO_DATES)):
        d, dt, ts, n = rows[i][0:3], rows[i][3:6], rows[i][6:9], rows[i][9:12]
        assert d == (None, 0, 1) and dt == (None, 0, 1), ZERO_DATES[i]
        assert ts == ((None, 0, 1) if i == 0 else (None, 1, 0)) and n == (None, 1, 0)
    assert rows[9][0:6] == (date(2020, 5, 5), 0, 0, date(2020, 5, 5), 0, 0)
    # the trap: on a NOT NULL date column, WHERE d IS NULL finds the zero date
    trapped = conn.execute("SELECT id FROM z WHERE d IS NULL").fetchall()
    assert trapped == [(0,)]
    missing = sql.SQL("SELECT id FROM z WHERE {}").format(
        clock.missing(sql.Identifier("d"), ColumnKind.DATE)
    )
    assert conn.execute(missing).fetchall() == []


# -- timestamps ----------------------------------------------------------------------------------
def _store_instants(engine: Engine, instants: list[int]) -> None:
    """`ts`: the instants (seconds since the epoch); `wall`: the same as UTC wall times."""
    if engine.name == "postgresql":
        engine.run("CREATE TABLE IF NOT EXISTS instants (id int, ts timestamptz, wall timestamp)")
        insert = (
            "INSERT INTO instants VALUES (%s, to_timestamp(%s), "
            "to_timestamp(%s) AT TIME ZONE 'UTC')"
        )
    else:  # the session runs in UTC: FROM_UNIXTIME is the UTC wall time
        engine.run("CREATE TABLE IF NOT EXISTS instants (id int, ts timestamp NULL, wall datetime)")
        insert = "INSERT INTO instants VALUES (%s, FROM_UNIXTIME(%s), FROM_UNIXTIME(%s))"
    engine.run("DELETE FROM instants")
    for i, epoch in enumerate(instants):
        engine.run(insert, (i, epoch, epoch))


def _days(engine: Engine, zone: str) -> list[tuple[date, date]]:
    clock = engine.clock(zone)
    query = sql.SQL("SELECT {}, {} FROM instants ORDER BY id").format(
        clock.column_date(sql.Identifier("ts"), ColumnKind.TIMESTAMP),
        clock.column_date(sql.Identifier("wall"), ColumnKind.DATETIME),
    )
    return [(row[0], row[1]) for row in engine.conn.execute(query).fetchall()]


@SETTINGS
@given(epochs=st.lists(EPOCHS, min_size=1, max_size=30), zone=st.sampled_from(ZONES))
def test_a_timestamp_is_read_as_a_day_of_the_legal_calendar(
    engine: Engine, epochs: list[int], zone: str
) -> None:
    """A TIMESTAMP (timestamptz) is an instant: its day is the legal zone's, at that instant
    (MariaDB: from the zone's offsets computed here, not the server's zone tables); a
    DATETIME (timestamp) is a wall time: its day is the one written."""
    _store_instants(engine, epochs)
    tz = ZoneInfo(zone)
    expected = [
        (
            datetime.fromtimestamp(epoch, UTC).astimezone(tz).date(),
            datetime.fromtimestamp(epoch, UTC).date(),
        )
        for epoch in epochs
    ]
    assert _days(engine, zone) == expected


def test_the_day_of_a_timestamp_changes_at_the_legal_midnight(engine: Engine) -> None:
    edges = [int(moment.timestamp()) for moment in PARIS_EDGES]
    _store_instants(engine, edges)
    paris = ZoneInfo("Europe/Paris")
    got = [instant for instant, _ in _days(engine, "Europe/Paris")]
    assert got == [moment.astimezone(paris).date() for moment in PARIS_EDGES]
    assert got[-1] == date(2006, 11, 28)  # 23:30 UTC on the 27th, 00:30 in Paris


# -- holds ------------------------------------------------------------------------------------
def test_a_released_hold_extends_by_its_days_in_the_legal_calendar(engine: Engine) -> None:
    """From 23:30 UTC on 27 November (the 28th in Paris) to 00:30 UTC on 29 November: one day
    in Paris, two in UTC; an active hold holds; another policy's hold does not count."""
    instant = "timestamptz" if engine.name == "postgresql" else "datetime(6)"  # UTC inside
    engine.run(
        f"CREATE TABLE holds (policy varchar(100), subject_key varchar(100), "
        f"subject_table varchar(100), subject_column varchar(100), held_since {instant}, "
        f"released_at {instant} NULL)"
    )
    engine.run("CREATE TABLE subjects (id int PRIMARY KEY)")
    engine.run("INSERT INTO subjects VALUES (1), (2), (3)")
    utc = "+00" if engine.name == "postgresql" else ""
    for key, since, released, policy in (
        ("1", "2006-11-27 23:30:00", "2006-11-29 00:30:00", "p"),
        ("1", "2010-01-01 12:00:00", "2010-01-11 12:00:00", "p"),
        ("2", "2020-06-30 22:30:00", None, "p"),
        ("3", "2006-01-01 00:00:00", "2007-01-01 00:00:00", "other"),
    ):
        engine.run(
            "INSERT INTO holds (policy, subject_key, held_since, released_at) "
            "VALUES (%s, %s, %s, %s)",
            (policy, key, since + utc, None if released is None else released + utc),
        )
    clock, params = engine.clock("Europe/Paris"), Params()
    join = clock.holds_join(
        sql.Identifier("holds"),
        covers(sql.SQL("policy = {}").format(params.add("p")), params.add("t"), params.add("c")),
        sql.Identifier("s", "id"),
    )
    query = sql.SQL(
        "SELECT s.id, coalesce(h.held, false), coalesce(h.extension, 0) FROM subjects AS s {} "
        "ORDER BY s.id"
    ).format(join)
    rows = [
        (k, bool(held), int(days)) for k, held, days in engine.conn.execute(query, params.values)
    ]
    assert rows == [(1, False, 1 + 10), (2, True, 0), (3, False, 0)]
