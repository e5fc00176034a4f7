"""The medical-record policy (CSP R1112-7) on hand-made patients, one rule per case."""

from __future__ import annotations

from datetime import date

import pytest

from retention.demo.schema import create_schema
from retention.engines import sql
from retention.store.schema import migrate
from tests.clock_helpers import Status, policy, statuses
from tests.fix_engines import EngineDB

AT = date(2026, 11, 28)

# key: (birth date as stored, death, [(stay end, cancelled)], [consultation dates], expected
# retention end or None when undeterminable, due at AT)
CASES: dict[
    int,
    tuple[str | None, date | None, list[tuple[date | None, str]], list[date], date | None, bool],
] = {
    # adult, last stay 2000: 20 years after the last visit
    1: ("1950-03-10", None, [(date(2000, 5, 2), "0")], [], date(2020, 5, 2), True),
    # last visit at age 5, more than 20 years ago: kept until the 28th birthday
    2: ("2000-01-15", None, [(date(2005, 6, 1), "0")], [], date(2028, 1, 15), False),
    # died 3 years after the last visit: 10 years after death
    3: ("1960-01-01", date(2018, 1, 1), [(date(2015, 1, 1), "0")], [], date(2028, 1, 1), False),
    4: ("1940-01-01", date(1993, 1, 1), [(date(1990, 1, 1), "0")], [], date(2003, 1, 1), True),
    # died 15 years after the last visit: 20 years after the last visit
    5: ("1940-01-01", date(2019, 1, 1), [(date(2004, 1, 1), "0")], [], date(2024, 1, 1), True),
    # death within 10 years overrides the 28th-birthday extension
    6: ("2000-01-01", date(2008, 1, 1), [(date(2005, 1, 1), "0")], [], date(2018, 1, 1), True),
    # a cancelled stay does not count as activity
    7: (
        "1950-01-01",
        None,
        [(date(1990, 1, 1), "0"), (date(2020, 1, 1), "1")],
        [],
        date(2010, 1, 1),
        True,
    ),
    # consultation only, dated through the planning table
    8: ("1950-01-01", None, [], [date(2010, 3, 1)], date(2030, 3, 1), False),
    9: ("1950-01-01", None, [(date(1995, 1, 1), "0")], [date(1999, 4, 2)], date(2019, 4, 2), True),
    # unreadable birth dates: undeterminable, kept
    10: ("1975-00-00", None, [(date(1990, 1, 1), "0")], [], None, False),
    11: ("1980-13-45", None, [(date(1990, 1, 1), "0")], [], None, False),
    12: ("1969-02-30", None, [(date(1990, 1, 1), "0")], [], None, False),
    13: (None, None, [(date(1990, 1, 1), "0")], [], None, False),
    # no visit at all: undeterminable
    14: ("1950-01-01", None, [], [], None, False),
    # an open stay (no discharge) counts as today
    15: ("1950-01-01", None, [(None, "0")], [], date(2046, 11, 28), False),
    # leap day birth: the 28th birthday of 1996-02-29 is 2024-02-29
    16: ("1996-02-29", None, [(date(2000, 1, 1), "0")], [], date(2024, 2, 29), True),
    # 10 years after a death on a leap day lands on 28 February
    17: ("1950-01-01", date(2016, 2, 29), [(date(2014, 1, 1), "0")], [], date(2026, 2, 28), True),
    # a death dated before the last stay contradicts the data: not the (shorter) death rule,
    # 20 years after the stay (the shipped formula once destroyed this record in 2015)
    19: ("1950-01-01", date(2005, 1, 1), [(date(2010, 1, 5), "0")], [], date(2030, 1, 5), False),
    # died on the day of the last discharge: 10 years after death
    20: ("1950-01-01", date(2010, 1, 5), [(date(2010, 1, 5), "0")], [], date(2020, 1, 5), True),
    # legal hold: due, but held (see test_hold)
    18: ("1950-01-01", None, [(date(1990, 1, 1), "0")], [], date(2010, 1, 1), True),
}


def _load(db: EngineDB) -> None:
    conn = db.conn
    create_schema(conn)
    migrate(conn, db.tool_schema)
    conn.execute("INSERT INTO medecins (medecin_id, nom, prenom) VALUES (1, 'X', 'Y')")
    plage = 0
    for key, (birth, death, stays, consults, _, _) in CASES.items():
        conn.execute(
            "INSERT INTO patients (patient_id, nom, prenom, naissance, deces) "
            "VALUES (%s, 'N', 'P', %s, %s)",
            (key, birth, death),
        )
        for end, cancelled in stays:
            start = end or date(2026, 11, 1)
            conn.execute(
                "INSERT INTO sejours (patient_id, entree, sortie, annule) VALUES (%s, %s, %s, %s)",
                (key, start, end, cancelled),
            )
        for day in consults:
            plage += 1
            conn.execute(
                "INSERT INTO plagesconsult (plageconsult_id, chir_id, date) VALUES (%s, 1, %s)",
                (plage, day),
            )
            conn.execute(
                "INSERT INTO consultations (patient_id, plageconsult_id) VALUES (%s, %s)",
                (key, plage),
            )


@pytest.fixture
def record(engine_db: EngineDB) -> EngineDB:
    _load(engine_db)
    return engine_db


@pytest.fixture(scope="module")
def records(engine_db_module: EngineDB) -> EngineDB:
    """The cases loaded once per engine, for the tests that only read them."""
    _load(engine_db_module)
    return engine_db_module


def _statuses(db: EngineDB, name: str) -> dict[int, Status]:
    return statuses(db.conn, policy(db.conn, name), AT, tool_schema=db.tool_schema)


def _holds(db: EngineDB, statement: str, params: tuple[str, ...] = ()) -> None:
    """A statement on the tool's holds table, written `{}` in `statement`."""
    db.conn.execute(sql.SQL(statement).format(db.tool("holds")), params)


@pytest.mark.parametrize("key", sorted(CASES))
def test_retention_end_follows_r1112_7(records: EngineDB, key: int) -> None:
    expected_end, expected_due = CASES[key][4], CASES[key][5]
    status = _statuses(records, "dossier-medical")[key]
    if expected_end is None:
        assert status.undeterminable
        assert not status.is_due
    else:
        assert not status.undeterminable
        assert status.due == expected_end
        assert status.is_due is expected_due


def test_hold_keeps_a_due_patient_and_release_extends_the_clock(
    record: EngineDB,
) -> None:
    _holds(
        record,
        "INSERT INTO {} (policy, subject_key, reason, held_since) "
        "VALUES ('dossier-medical', '18', 'claim', '2026-01-01')",
    )
    held = _statuses(record, "dossier-medical")[18]
    assert held.held and not held.is_due
    # Released after 100 days: the clock was suspended for that long.
    _holds(record, "UPDATE {} SET released_at = '2026-04-11' WHERE subject_key = '18'")
    released = _statuses(record, "dossier-medical")[18]
    assert not released.held
    assert released.due == date(2010, 4, 11)
    assert released.is_due


def test_hold_narrowed_to_another_policy_does_not_apply(record: EngineDB) -> None:
    _holds(
        record,
        "INSERT INTO {} (policy, subject_key, reason, subject_table, subject_column) "
        "VALUES ('contacts-patients', '18', 'claim', %s, 'patient_id')",
        (record.table("patients"),),
    )
    status = _statuses(record, "dossier-medical")[18]
    assert status.is_due and not status.held


def test_hold_recorded_before_scopes_under_another_policy_holds_the_person(
    record: EngineDB,
) -> None:
    """--policy was required then: nobody chose to narrow it (fail closed)."""
    _holds(
        record,
        "INSERT INTO {} (policy, subject_key, reason) VALUES ('contacts-patients', '18', 'claim')",
    )
    status = _statuses(record, "dossier-medical")[18]
    assert status.held and not status.is_due


def test_a_hold_on_the_person_applies_under_every_policy_on_its_table(
    record: EngineDB,
) -> None:
    person = (
        "INSERT INTO {} (policy, subject_table, subject_column, subject_key, "
        "reason, held_since) VALUES (NULL, %s, 'patient_id', '18', 'claim', '2026-01-01')"
    )
    _holds(record, person, (record.table("user_log"),))  # another table's key 18: not this person
    assert _statuses(record, "dossier-medical")[18].is_due
    _holds(record, person, (record.table("patients"),))
    for name in ("dossier-medical", "contacts-patients"):
        status = _statuses(record, name)[18]
        assert status.held and not status.is_due, name
    _holds(
        record,
        "UPDATE {} SET released_at = '2026-04-11' WHERE subject_table = %s",
        (record.table("patients"),),
    )
    released = _statuses(record, "dossier-medical")[18]
    assert not released.held and released.due == date(2010, 4, 11)  # suspended 100 days
