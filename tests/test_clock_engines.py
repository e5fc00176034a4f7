"""The whole clock (`clock_query`) on PostgreSQL and on MariaDB, through the tool's connection
and the engine's catalogue: the same policy gives the same statuses on both engines.

The boundary day for each kind of date column (text in two formats, date, wall time, instant):
kept on its last day, due the day after; an instant read as a day of the legal calendar; leap
days; a stay's date through a declared link; a batch's keys. On MariaDB: zero dates make the
subject undeterminable (never due), and so does a due date beyond 9999-12-31.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from retention.catalog.introspect import read_catalog
from retention.db import connect
from retention.engines import Connection, sql
from retention.engines.clock import ClockSQL, clock_sql
from retention.plan.clock import UNKNOWN_DUE, clock_query
from retention.policy.bind import bind_policy
from retention.policy.bound import BoundPolicy
from retention.policy.expr import Params
from retention.policy.load import load_policy_bytes
from retention.settings import Settings

PARIS = ZoneInfo("Europe/Paris")

# id: the last visit (as text YYYY-MM-DD), and the last day kept (visit + 20 years)
VISITS: dict[int, tuple[str, date]] = {
    1: ("2006-11-27", date(2026, 11, 27)),
    2: ("2080-02-29", date(2100, 2, 28)),  # no 29 February in 2100: kept through the 28th
    3: ("2008-02-29", date(2028, 2, 29)),
    4: ("2006-12-31", date(2026, 12, 31)),
}
KINDS = {
    "texte": ("v_text", ", format: YYYY-MM-DD"),
    "francais": ("v_fr", ", format: DD/MM/YYYY"),
    "date": ("v_date", ""),
    "horodatage": ("v_wall", ""),
    "instant": ("v_instant", ""),
}
POLICY = """
name: visites-{kind}
subject: {{table: dossiers, key: id}}
related:
  follow_foreign_keys: false
  links: [{{table: sejours, column: dossier_id}}]
dates:
  visite: {{column: {column}{fmt}}}
  dernier_sejour: {{{stays}}}
retain_until: {due}
phases:
  - name: destruction
    due: retain_until
    action: purge
"""
DDL = {
    "postgresql": (
        "CREATE TABLE dossiers (id int PRIMARY KEY, v_text text, v_fr text, v_date date, "
        "v_wall timestamp, v_instant timestamptz)",
        "CREATE TABLE sejours (id int PRIMARY KEY, dossier_id int, sortie timestamp, "
        "annule char(1), sortie_fr varchar(20))",
    ),
    "mariadb": (
        "CREATE TABLE dossiers (id int PRIMARY KEY, v_text varchar(20), v_fr varchar(20), "
        "v_date date NULL, v_wall datetime NULL, v_instant timestamp NULL)",
        "CREATE TABLE sejours (id int PRIMARY KEY, dossier_id int, sortie datetime NULL, "
        "annule char(1), sortie_fr varchar(20))",
    ),
}


@dataclass(frozen=True)
class Status:
    due: date | None
    is_due: bool
    undeterminable: bool
    reasons: frozenset[str]
    retain_until: date | None
    held: bool = False


@dataclass(frozen=True)
class Engine:
    name: str
    conn: Connection

    @property
    def dialect(self) -> ClockSQL:
        return clock_sql(self.conn)

    def insert(self, table: str, row: dict[str, object]) -> None:
        self.conn.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.Identifier(c) for c in row),
                sql.SQL(", ").join(sql.Placeholder(c) for c in row),
            ),
            row,
        )

    def instant(self, moment: datetime) -> datetime:
        """How the engine takes an instant: PostgreSQL with its zone, MariaDB as the UTC wall
        time (the tool's session runs in UTC)."""
        utc = moment.astimezone(UTC)
        return utc if self.name == "postgresql" else utc.replace(tzinfo=None)

    def policy(
        self,
        kind: str,
        due: str = "visite + 20 years",
        stays: str = "latest: sortie, over: sejours",
    ) -> BoundPolicy:
        column, fmt = KINDS[kind]
        text = POLICY.format(kind=kind, column=column, fmt=fmt, due=due, stays=stays)
        bound, problems = bind_policy(
            load_policy_bytes(text.encode(), f"{kind}.yaml"), read_catalog(self.conn)
        )
        assert bound is not None, problems
        return bound

    def statuses(
        self,
        bound: BoundPolicy,
        at: date,
        keys: list[int] | None = None,
        holds: sql.Composable | None = None,
    ) -> dict[int, Status]:
        params = Params("t")
        extra: dict[str, Any] = {}
        if keys is not None:  # a batch's keys, as the engine would pass them
            extra["batch_keys"] = keys if self.name == "postgresql" else json.dumps(keys)
        clock = clock_query(
            bound,
            bound.phases[-1],
            at,
            holds_table=holds,
            dialect=self.dialect,
            keys=None if keys is None else _key_set(self.name),
            with_retain_until=True,
        )
        why = [sql.Identifier(f"why_{i}") for i in range(len(clock.reasons))]
        # PostgreSQL computes due dates beyond 9999 that psycopg cannot load: read as NULL
        limit = self.dialect.bind(params, date.max, "date")
        query = sql.SQL(
            "SELECT k, CASE WHEN due <= {limit} THEN due END, is_due, undeterminable, "
            "CASE WHEN retain_until <= {limit} THEN retain_until END, held, {why} "
            "FROM ({clock}) AS c"
        ).format(limit=limit, why=sql.SQL(", ").join(why), clock=clock.query)
        rows = self.conn.execute(query, {**clock.params, **params.values, **extra}).fetchall()
        return {
            int(row[0]): Status(
                row[1],
                bool(row[2]),
                bool(row[3]),
                frozenset(r for r, on in zip(clock.reasons, row[6:], strict=True) if on),
                row[4],
                bool(row[5]),
            )
            for row in rows
        }


def _key_set(engine: str) -> sql.Composable:
    """The keys of a batch as one parameter: an array, or a JSON list read by JSON_TABLE."""
    if engine == "postgresql":
        return sql.SQL("{}::int[]").format(sql.Placeholder("batch_keys"))
    return sql.SQL("SELECT k FROM JSON_TABLE({}, '$[*]' COLUMNS (k int PATH '$')) AS j").format(
        sql.Placeholder("batch_keys")
    )


@pytest.fixture(params=["postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The tool's own connection (legal zone Europe/Paris) to a fresh database holding the
    dossiers and their stays."""
    fixture = {"postgresql": "db_url", "mariadb": "mariadb_url"}[request.param]
    url: str = request.getfixturevalue(fixture)
    with connect(Settings(timezone="Europe/Paris"), url=url) as conn:
        for statement in DDL[request.param]:
            conn.execute(statement)
        yield Engine(request.param, conn)


def _visits(engine: Engine) -> None:
    """Each visit in every kind of column; the instant at 23:59:59 in Paris (none after 2038:
    MariaDB's TIMESTAMP ends there)."""
    for key, (visit, _) in VISITS.items():
        day = date.fromisoformat(visit)
        late = datetime.combine(day, time(23, 59, 59))
        engine.insert(
            "dossiers",
            {
                "id": key,
                "v_text": visit,
                "v_fr": day.strftime("%d/%m/%Y"),
                "v_date": day,
                "v_wall": late,
                "v_instant": engine.instant(late.replace(tzinfo=PARIS))
                if day.year < 2038
                else None,
            },
        )


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_phase_is_due_the_day_after_its_last_day_never_on_it(engine: Engine, kind: str) -> None:
    _visits(engine)
    bound = engine.policy(kind)
    for offset, expected in ((-1, False), (0, False), (1, True)):
        for key, (_, last) in VISITS.items():
            if kind == "instant" and last.year > 2050:
                continue
            status = engine.statuses(bound, last + timedelta(days=offset))[key]
            assert (status.due, status.retain_until) == (last, last), (kind, key)
            assert status.is_due is expected, (kind, key, offset)
            assert not status.undeterminable


def test_an_instant_is_a_day_of_the_legal_calendar(engine: Engine) -> None:
    """23:30 UTC on 27 November is 00:30 on the 28th in Paris: kept through 2026-11-28."""
    moment = datetime(2006, 11, 27, 23, 30, tzinfo=UTC)
    engine.insert("dossiers", {"id": 9, "v_instant": engine.instant(moment)})
    bound = engine.policy("instant")
    assert engine.statuses(bound, date(2026, 11, 28))[9] == Status(
        date(2026, 11, 28), False, False, frozenset(), date(2026, 11, 28)
    )
    assert engine.statuses(bound, date(2026, 11, 29))[9].is_due


def test_a_batch_clock_covers_its_keys_only(engine: Engine) -> None:
    _visits(engine)
    got = engine.statuses(engine.policy("date"), date(2027, 1, 1), keys=[1, 3, 42])
    assert {k: s.is_due for k, s in got.items()} == {1: True, 3: False}


def test_the_last_stay_comes_through_a_declared_link(engine: Engine) -> None:
    _visits(engine)
    for id_, dossier, sortie in ((1, 1, "2010-05-05 10:00:00"), (2, 1, "2012-01-01 23:00:00")):
        engine.insert(
            "sejours",
            {"id": id_, "dossier_id": dossier, "sortie": datetime.fromisoformat(sortie)},
        )
    bound = engine.policy("date", due="greatest(visite, dernier_sejour) + 20 years")
    # no stay: greatest() ignores the missing one
    assert engine.statuses(bound, date(2030, 1, 1))[4].due == date(2026, 12, 31)
    status = engine.statuses(bound, date(2032, 1, 2))[1]
    assert (status.due, status.is_due) == (date(2032, 1, 1), True)


def test_a_stay_without_a_discharge_makes_its_subject_undeterminable_unless_told(
    engine: Engine,
) -> None:
    """Dossier 1 left in 2000 and is in hospital now (a stay with no discharge date). Read as
    the latest of the discharges, the open stay is missing data: the dossier is kept as
    undeterminable, never judged on 2000 alone; `if_missing: "null"` leaves such stays out (on
    the author's word), `coalesce(sortie, today)` counts the open stay as today."""
    _visits(engine)
    for id_, sortie in ((1, datetime(2000, 1, 1, 12)), (2, None)):
        engine.insert("sejours", {"id": id_, "dossier_id": 1, "sortie": sortie})
    at = date(2030, 1, 1)
    due = "dernier_sejour + 20 years"
    status = engine.statuses(engine.policy("date", due=due), at)[1]
    assert (status.is_due, status.undeterminable) == (False, True)
    assert status.reasons == {"dernier_sejour"}
    left_out = engine.policy(
        "date", due=due, stays='latest: sortie, over: sejours, if_missing: "null"'
    )
    status = engine.statuses(left_out, at)[1]
    assert (status.due, status.is_due, status.undeterminable) == (date(2020, 1, 1), True, False)
    today = engine.policy("date", due=due, stays='latest: "coalesce(sortie, today)", over: sejours')
    status = engine.statuses(today, at)[1]
    assert (status.due, status.is_due, status.undeterminable) == (date(2050, 1, 1), False, False)
    # a dossier without any stay: no date at all, as before (greatest() below ignores it)
    assert engine.statuses(engine.policy("date", due=due), at)[2].reasons == {UNKNOWN_DUE}


def test_a_stay_whose_filter_is_unknown_makes_its_subject_undeterminable_unless_told(
    engine: Engine,
) -> None:
    """Cancelled stays are left out (`annule = '0'`); a recent stay whose flag is NULL may or
    may not count: the dossier is kept as undeterminable, not judged on 2000 alone."""
    _visits(engine)
    for id_, sortie, annule in (
        (1, datetime(2000, 1, 1, 12), "0"),
        (2, datetime(2025, 6, 1, 12), None),
        (3, datetime(2026, 1, 1, 12), "1"),  # cancelled: left out, whatever its date
    ):
        engine.insert("sejours", {"id": id_, "dossier_id": 1, "sortie": sortie, "annule": annule})
    at, due = date(2030, 1, 1), "dernier_sejour + 20 years"
    stays = "latest: sortie, over: sejours, where: \"annule = '0'\""
    status = engine.statuses(engine.policy("date", due=due, stays=stays), at)[1]
    assert (status.is_due, status.undeterminable, status.reasons) == (
        False,
        True,
        frozenset({"dernier_sejour"}),
    )
    told = engine.policy("date", due=due, stays=stays + ', if_missing: "null"')
    status = engine.statuses(told, at)[1]
    assert (status.due, status.is_due, status.undeterminable) == (date(2020, 1, 1), True, False)
    engine.conn.execute("UPDATE sejours SET annule = '1' WHERE id = 2")
    status = engine.statuses(engine.policy("date", due=due, stays=stays), at)[1]
    assert (status.due, status.is_due, status.undeterminable) == (date(2020, 1, 1), True, False)


# values neither engine can read: MariaDB's zero dates, PostgreSQL's infinity
UNREADABLE = {
    "postgresql": {"v_date": "infinity", "v_wall": "infinity", "sortie": "-infinity"},
    "mariadb": {
        "v_date": "0000-00-00",
        "v_wall": "2020-00-10 10:00:00",
        "sortie": "2020-05-00 00:00:00",
    },
}


@pytest.mark.parametrize("kind", ["date", "horodatage", "texte"])
def test_an_unreadable_date_makes_its_subject_undeterminable_never_due(
    engine: Engine, kind: str
) -> None:
    """MariaDB's zero dates and zero months or days (accepted by its default sql_mode), as
    PostgreSQL's infinity and a text date such as 1975-00-00: kept and reported."""
    values = UNREADABLE[engine.name]
    engine.insert(
        "dossiers",
        {"id": 1, "v_text": "1975-00-00", "v_date": values["v_date"], "v_wall": values["v_wall"]},
    )
    status = engine.statuses(engine.policy(kind), date(9999, 12, 31))[1]
    assert (status.is_due, status.undeterminable) == (False, True)
    assert "visite" in status.reasons  # and so no due date


def test_an_unreadable_stay_makes_its_subject_undeterminable(engine: Engine) -> None:
    _visits(engine)
    engine.insert(
        "sejours", {"id": 1, "dossier_id": 1, "sortie": UNREADABLE[engine.name]["sortie"]}
    )
    bound = engine.policy("date", due="greatest(visite, dernier_sejour) + 20 years")
    status = engine.statuses(bound, date(9999, 12, 31))[1]
    assert (status.is_due, status.undeterminable) == (False, True)
    assert "dernier_sejour" in status.reasons


def test_a_due_date_beyond_9999_is_never_due(engine: Engine) -> None:
    """PostgreSQL computes 10009-06-01, never past; MariaDB's calendar ends at 9999-12-31, so
    its clock has no due date there: undeterminable, kept and reported."""
    engine.insert("dossiers", {"id": 1, "v_date": date(9989, 6, 1)})
    status = engine.statuses(engine.policy("date"), date(9999, 12, 31))[1]
    assert not status.is_due
    if engine.name == "mariadb":
        assert (status.undeterminable, status.reasons) == (True, frozenset({UNKNOWN_DUE}))
    else:
        assert (status.undeterminable, status.due) == (False, None)


def test_a_hold_keeps_its_subject_and_a_released_one_extends_it_by_its_legal_days(
    engine: Engine,
) -> None:
    """Held from 23:30 UTC on 27 November 2010 (the 28th in Paris) to 00:30 UTC on the 29th
    (01:30 in Paris): one day of the legal calendar (two in UTC), so kept through 2026-11-28.
    An active hold keeps its subject while its due date passes. The tool's own tables keep
    instants in UTC (timestamptz; MariaDB DATETIME(6))."""
    instant = "timestamptz" if engine.name == "postgresql" else "datetime(6)"
    engine.conn.execute(
        f"CREATE TABLE holds (policy varchar(100), subject_key varchar(100), "
        f"subject_table varchar(100), subject_column varchar(100), held_since {instant}, "
        f"released_at {instant} NULL)"
    )
    _visits(engine)
    for key, since, released in (
        (
            "1",
            datetime(2010, 11, 27, 23, 30, tzinfo=UTC),
            datetime(2010, 11, 29, 0, 30, tzinfo=UTC),
        ),
        ("4", datetime(2020, 1, 1, tzinfo=UTC), None),
    ):
        engine.insert(
            "holds",
            {
                "policy": "visites-date",
                "subject_key": key,
                "held_since": engine.instant(since),
                "released_at": None if released is None else engine.instant(released),
            },
        )
    bound, holds = engine.policy("date"), sql.Identifier("holds")
    on_the_day = engine.statuses(bound, date(2026, 11, 28), holds=holds)
    assert (on_the_day[1].due, on_the_day[1].is_due) == (date(2026, 11, 28), False)
    assert engine.statuses(bound, date(2026, 11, 29), holds=holds)[1].is_due
    held = engine.statuses(bound, date(2030, 1, 1), holds=holds)
    assert (held[4].due, held[4].held, held[4].is_due) == (date(2026, 12, 31), True, False)
    assert (held[1].held, held[1].is_due) == (False, True)
    query = clock_query(
        bound, bound.phases[-1], date(2030, 1, 1), holds_table=holds, dialect=engine.dialect
    )
    rows = engine.conn.execute(
        sql.SQL("SELECT k FROM ({}) AS c WHERE is_due ORDER BY k").format(query.query),
        query.params,
    ).fetchall()
    assert [int(r[0]) for r in rows] == [1, 3]  # 4 is held


def test_the_missing_value_tests_are_written_only_where_a_value_can_be_missing() -> None:
    """The clock tests every aggregated row for a missing value or an unknown filter, unless
    the expression can never be NULL (the test repeats the whole date expression per row)."""
    from retention.engines.catalogue import Column, ColumnKind, Table
    from retention.plan.clock import _may_be_null
    from retention.policy.expr import parse

    def column(name: str, kind: ColumnKind, not_null: bool) -> Column:
        return Column(name, "x", "x", kind, None, not_null, None)

    stays = Table(
        "s",
        "sejours",
        {
            "sortie": column("sortie", ColumnKind.DATETIME, False),
            "entree": column("entree", ColumnKind.DATETIME, True),
            "annule": column("annule", ColumnKind.TEXT, True),
            "type": column("type", ColumnKind.TEXT, False),
        },
        ("id",),
        (),
        (),
        0,
        "",
    )
    slots = Table("s", "plages", {"jour": column("jour", ColumnKind.DATE, True)}, (), (), (), 0, "")
    tables = {"sejours": stays, "plages": slots}
    expected = {
        "sortie": True,
        "entree": False,
        "coalesce(sortie, today)": False,
        "greatest(sortie, entree)": False,
        "least(sortie, sejours.sortie)": True,
        "plages.jour": True,  # a joined row may be missing
        "entree + 1 year": False,
        "if annule = '1' then null else entree": True,
        "annule = '0'": False,
        "type = 'x'": True,
        "annule = '0' and type is null": False,
        "annule in ('0', null)": True,
    }
    got = {text: _may_be_null(parse(text), stays, tables) for text in expected}
    assert got == expected


def test_a_stay_the_filter_leaves_out_counts_for_nothing_whatever_its_date(
    engine: Engine,
) -> None:
    """A cancelled stay dated 0000-00-00 (Mediboard keeps many) kept its patient
    undeterminable forever, though the filter leaves it out: its date is never read. A stay
    the filter keeps, dated so, still makes the date unknown."""
    _visits(engine)
    unreadable = UNREADABLE[engine.name]["sortie"]
    for id_, sortie, annule in (
        (1, datetime(2000, 1, 1, 12), "0"),
        (2, unreadable, "1"),  # cancelled: left out, whatever its date
    ):
        engine.insert("sejours", {"id": id_, "dossier_id": 1, "sortie": sortie, "annule": annule})
    at, due = date(2030, 1, 1), "dernier_sejour + 20 years"
    stays = "latest: sortie, over: sejours, where: \"annule = '0'\""
    status = engine.statuses(engine.policy("date", due=due, stays=stays), at)[1]
    assert (status.due, status.is_due, status.undeterminable) == (date(2020, 1, 1), True, False)
    engine.conn.execute("UPDATE sejours SET annule = '0' WHERE id = 2")
    status = engine.statuses(engine.policy("date", due=due, stays=stays), at)[1]
    assert (status.is_due, status.undeterminable) == (False, True)
    assert "dernier_sejour" in status.reasons
    # a filter that reads the unreadable date cannot tell: the stay may count (PostgreSQL
    # compared -infinity as a value, left the stay out and made the subject due)
    engine.conn.execute("UPDATE sejours SET annule = '1' WHERE id = 2")
    reading = "latest: sortie, over: sejours, where: \"annule = '0' or sortie > date '2010-01-01'\""
    status = engine.statuses(engine.policy("date", due=due, stays=reading), at)[1]
    assert (status.is_due, status.undeterminable) == (False, True)


def test_a_related_rows_date_stored_as_text_is_read_in_its_format(engine: Engine) -> None:
    """A compliance officer's finding: Mediboard-like tables keep visit dates as text
    (DD/MM/YYYY), `draft` proposed such a column, and no policy could read it ('this expression
    gives a text'). `format` on the aggregate reads its text columns as dates; a value in
    another shape is unreadable, and keeps its subject undeterminable."""
    _visits(engine)
    for id_, dossier, day in ((1, 1, "01/01/2000"), (2, 1, "15/06/2005"), (3, 2, "15/06/2005")):
        engine.insert("sejours", {"id": id_, "dossier_id": dossier, "sortie_fr": day})
    engine.insert("sejours", {"id": 4, "dossier_id": 2, "sortie_fr": "2006-01-31"})
    at, due = date(2030, 1, 1), "dernier_sejour + 20 years"
    # the filter reads its text columns as text: only the value's are dates
    stays = (
        "latest: sortie_fr, over: sejours, where: \"coalesce(annule, '0') = '0'\", "
        "format: DD/MM/YYYY"
    )
    found = engine.statuses(engine.policy("date", due=due, stays=stays), at)
    assert (found[1].due, found[1].is_due, found[1].undeterminable) == (
        date(2025, 6, 15),
        True,
        False,
    )
    assert (found[2].is_due, found[2].undeterminable) == (False, True)
    assert "dernier_sejour" in found[2].reasons
    # a format that reads less than half of the column's values: check says so (a review's
    # doubt: the check of column dates did not look at aggregates)
    from retention.policy.data_checks import format_problems

    wrong = engine.policy("date", due=due, stays=stays.replace("DD/MM/YYYY", "YYYY-MM-DD"))
    (problem,) = format_problems(engine.conn, wrong)
    assert problem.message == (
        "only 1 of the first 4 value(s) of sejours.sortie_fr read as YYYY-MM-DD: the subjects "
        "of the others are undeterminable (kept, never purged)"
    )
    assert problem.hint == "they read as DD/MM/YYYY (3 of 4): write format: DD/MM/YYYY"
    assert format_problems(engine.conn, engine.policy("date", due=due, stays=stays)) == []


def test_if_missing_null_over_rows_without_a_value_is_said_by_check(engine: Engine) -> None:
    """A compliance officer's finding: if_missing: "null" on the last discharge left out the
    stays still open, and two more patients became due (one in the ward), without a word."""
    from retention.policy.data_checks import left_out_rows

    _visits(engine)
    engine.insert("sejours", {"id": 1, "dossier_id": 1, "sortie": datetime(2000, 1, 1, 12)})
    engine.insert("sejours", {"id": 2, "dossier_id": 1, "sortie": None})
    stays = 'latest: sortie, over: sejours, if_missing: "null"'
    (problem,) = left_out_rows(engine.conn, engine.policy("date", stays=stays))
    assert problem.message == (
        'if_missing: "null" leaves out the 1 sejours row(s) whose sortie is empty (a stay '
        "still open?): their subjects are judged on their other rows"
    )
    assert problem.hint is not None and "'latest: coalesce(sortie, today)'" in problem.hint
    assert left_out_rows(engine.conn, engine.policy("date")) == []  # if_missing undeterminable
