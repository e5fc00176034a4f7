"""The boundary day: `retain_until` is the last day a record is kept, so a phase due at that date
acts from the next day on, never on the day itself. Each kind of date column is tried the day
before, the day and the day after its end of retention; timestamps near midnight are read as a
day of the legal calendar (`timezone`), never of UTC; 29 February ends on 28 February in a year
without one. On both engines: MariaDB's DATETIME has no zone (read in `timezone`), its
TIMESTAMP is an instant (stored in UTC) and holds 1970 to 2038 only (the visit of 2080 is then
NULL, and undeterminable, in that column alone)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retention.db import connect
from retention.engines import sql
from retention.plan.compute import compute_plan
from retention.policy.expr import parse
from retention.policy.expr.evaluate import evaluate
from retention.store.schema import migrate
from tests.clock_helpers import Status, policy, statuses
from tests.fix_engines import EngineDB

# id: (text YYYY-MM-DD, text DD/MM/YYYY, date, timestamp, timestamptz) of the last visit, and the
# expected last day kept (visit + 20 years)
VISITS: dict[int, tuple[str, date]] = {
    1: ("2006-11-27", date(2026, 11, 27)),
    # a leap day: 20 years later (2100 is no leap year) there is no 29 February, the record is
    # kept through the 28th
    2: ("2080-02-29", date(2100, 2, 28)),
    3: ("2008-02-29", date(2028, 2, 29)),
    4: ("2006-12-31", date(2026, 12, 31)),
    5: ("2004-02-29", date(2024, 2, 29)),
}

POLICY = """
name: visites-{kind}
subject: {{table: dossiers, key: id}}
related: {{follow_foreign_keys: false}}
dates:
  visite: {{column: {column}{fmt}}}
retain_until: visite + 20 years
phases:
  - name: destruction
    due: retain_until
    action: purge
"""

KINDS = {
    "texte": ("v_text", ", format: YYYY-MM-DD"),
    "francais": ("v_fr", ", format: DD/MM/YYYY"),
    "date": ("v_date", ""),
    "horodatage": ("v_ts", ""),
    "horodatage-zone": ("v_tstz", ""),
}


PARIS = ZoneInfo("Europe/Paris")
DDL = {
    "postgresql": "CREATE TABLE dossiers (id int PRIMARY KEY, v_text text, v_fr text, "
    "v_date date, v_ts timestamp, v_tstz timestamptz)",
    "mariadb": "CREATE TABLE dossiers (id int PRIMARY KEY, v_text text, v_fr text, "
    "v_date date, v_ts datetime, v_tstz timestamp NULL) ENGINE=InnoDB",
}
# the instants MariaDB's TIMESTAMP holds (its 2038 limit), in UTC as its sessions write them
TIMESTAMP_RANGE = (datetime(1970, 1, 1, 0, 0, 1), datetime(2038, 1, 19, 3, 14, 7))


def _instant(db: EngineDB, moment: datetime) -> datetime | None:
    """An aware instant as the engine's column takes it: PostgreSQL's timestamptz as it is;
    MariaDB's TIMESTAMP in UTC (the tool's sessions are in UTC), None outside its range."""
    if db.engine == "postgresql":
        return moment
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc if TIMESTAMP_RANGE[0] <= utc <= TIMESTAMP_RANGE[1] else None


def _in_range(db: EngineDB, kind: str, key: int) -> bool:
    """Whether the visit of `key` can be stored in `kind`'s column on this engine."""
    day = date.fromisoformat(VISITS[key][0])
    return kind != "horodatage-zone" or _instant(db, _last_second(day)) is not None


def _last_second(day: date) -> datetime:
    """The day's last second in the legal calendar's zone."""
    return datetime.combine(day, time(23, 59, 59), PARIS)


def _schema(db: EngineDB, tmp_path: Path) -> None:
    conn = db.conn
    conn.execute(DDL[db.engine])
    for key, (visit, _) in VISITS.items():
        day = date.fromisoformat(visit)
        conn.execute(
            # timestamps at the day's last second, in the legal calendar's zone
            "INSERT INTO dossiers VALUES (%s, %s, %s, %s, %s, %s)",
            (
                key,
                visit,
                day.strftime("%d/%m/%Y"),
                day,
                _last_second(day).replace(tzinfo=None),
                _instant(db, _last_second(day)),
            ),
        )
    migrate(conn, db.tool_schema)
    for kind, (column, fmt) in KINDS.items():
        text = POLICY.format(kind=kind, column=column, fmt=fmt)
        (tmp_path / f"{kind}.yaml").write_text(text, encoding="utf-8")


def _statuses(db: EngineDB, name: str, folder: Path, at: date) -> dict[int, Status]:
    bound = policy(db.conn, name, folder)
    return statuses(db.conn, bound, at, tool_schema=db.tool_schema)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_phase_is_due_the_day_after_retain_until_never_on_it(
    engine_db: EngineDB, tmp_path: Path, kind: str
) -> None:
    _schema(engine_db, tmp_path)
    for key, (_, last_day) in VISITS.items():
        for at, expected in (
            (last_day - timedelta(days=1), False),
            (last_day, False),
            (last_day + timedelta(days=1), True),
        ):
            status = _statuses(engine_db, f"visites-{kind}", tmp_path, at)[key]
            if not _in_range(engine_db, kind, key):  # NULL in MariaDB's TIMESTAMP: kept
                assert status.undeterminable and not status.is_due, (kind, key)
                continue
            assert status.due == last_day, (kind, key)
            assert status.is_due is expected, (kind, key, at)


def test_the_plan_counts_a_record_from_the_day_after_its_last_day(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    _schema(engine_db, tmp_path)
    bound = policy(engine_db.conn, "visites-date", tmp_path)
    on_the_day = compute_plan(
        engine_db.conn, [bound], date(2026, 11, 27), schema=engine_db.tool_schema
    )
    after = compute_plan(engine_db.conn, [bound], date(2026, 11, 28), schema=engine_db.tool_schema)
    # the leap-day visit of 2004 (kept through 2024-02-29) is due on both days; 2006-11-27 only
    # on the day after
    assert on_the_day.policies[0].phases[0].due_subjects == 1
    assert after.policies[0].phases[0].due_subjects == 2


def test_a_timestamp_with_zone_is_read_as_a_day_of_the_legal_calendar(
    engine_db: EngineDB, tmp_path: Path
) -> None:
    """00:30 in Paris on 28 November is still 27 November in UTC: on the tool's own connection
    (`timezone` Europe/Paris) the legal day is the 28th, so the record is kept through
    2026-11-28; a reading in UTC would destroy it a day early."""
    _schema(engine_db, tmp_path)
    moment = datetime(2006, 11, 27, 23, 30, tzinfo=UTC)
    engine_db.conn.execute(
        "INSERT INTO dossiers (id, v_tstz) VALUES (9, %s)", (_instant(engine_db, moment),)
    )
    for zone, last_day in (("Europe/Paris", date(2026, 11, 28)), ("UTC", date(2026, 11, 27))):
        with connect(engine_db.settings(tmp_path, timezone=zone)) as tool:
            bound = policy(tool, "visites-horodatage-zone", tmp_path)
            found = statuses(tool, bound, last_day, tool_schema=engine_db.tool_schema)
            assert found[9].due == last_day, zone
            assert not found[9].is_due, zone
            after = statuses(
                tool, bound, last_day + timedelta(days=1), tool_schema=engine_db.tool_schema
            )
            assert after[9].is_due, zone


LEAP_DAYS = st.sampled_from([date(y, 2, 29) for y in (1980, 2000, 2004, 2080, 2096)])


# whom a hold names: (policy, subject table) as stored, and whether it covers `visites-date`
SCOPES = {
    "the person": (None, "dossiers", True),
    "this policy": ("visites-date", "dossiers", True),
    "another policy on the table": ("visites-texte", "dossiers", False),
    "another policy, before scopes": ("visites-texte", None, True),
}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    visit=st.one_of(LEAP_DAYS, st.dates(date(1950, 1, 1), date(2079, 12, 31))),
    offset=st.integers(-2, 2),
    hold=st.one_of(
        st.none(),
        st.tuples(st.sampled_from(sorted(SCOPES)), st.none() | st.integers(0, 400)),
    ),
)
def test_the_clock_and_the_python_reading_agree_around_the_last_day(
    engine_db: EngineDB,
    tmp_path: Path,
    visit: date,
    offset: int,
    hold: tuple[str, int | None] | None,
) -> None:
    """For a random visit (leap days often) and a random hold (whom it names, active or released
    after some days), the plan's date is drawn around the last day kept as the Python evaluator
    reads `visite + 20 years`, extended by a released hold that covers the policy: due exactly
    when that day is past and no covering hold is active."""
    conn = engine_db.conn
    if not (tmp_path / "date.yaml").exists():  # the first example
        _schema(engine_db, tmp_path)
    conn.execute("DELETE FROM dossiers")
    conn.execute(sql.SQL("DELETE FROM {}").format(engine_db.tool("holds")))
    conn.execute(
        "INSERT INTO dossiers (id, v_text, v_date) VALUES (1, %s, %s)", (visit.isoformat(), visit)
    )
    last_day = evaluate(parse("visite + 20 years"), {"visite": visit}, visit)
    assert isinstance(last_day, date)
    held = False
    if hold is not None:
        scope, days = hold
        name, table, covering = SCOPES[scope]
        since = datetime(2020, 1, 1, 12, tzinfo=UTC)
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (policy, subject_key, reason, subject_table, subject_column, "
                "held_since, released_at) VALUES (%s, '1', 'claim', %s, %s, %s, %s)"
            ).format(engine_db.tool("holds")),
            (
                name,
                table and engine_db.table(table),
                table and "id",
                _instant(engine_db, since),
                None if days is None else _instant(engine_db, since + timedelta(days=days)),
            ),
        )
        if covering and days is not None:
            last_day += timedelta(days=days)
        held = covering and days is None
    at = last_day + timedelta(days=offset)
    status = _statuses(engine_db, "visites-date", tmp_path, at)[1]
    assert status.due == last_day
    assert status.held is held
    assert status.is_due is (last_day < at and not held)
    if hold is None:
        assert _statuses(engine_db, "visites-texte", tmp_path, at)[1] == status
