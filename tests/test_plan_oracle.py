"""`plan` counts against an independent computation in Python on generated data."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Any

from retention.demo.tables import key_of
from retention.engines import sql
from retention.plan.compute import compute_plan
from retention.store.schema import migrate
from tests.clock_helpers import policy
from tests.fix_engines import EngineDB

AT = date(2025, 6, 1)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def _birth(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _r1112_7(birth: date, death: date | None, last: date) -> date:
    if death is not None and last <= death < _add_years(last, 10):
        return _add_years(death, 10)
    return max(_add_years(last, 20), _add_years(birth, 28))


def _rows(db: EngineDB, table: str, *columns: str) -> list[tuple[Any, ...]]:
    """Every row of a demo table, those columns only (the oracle filters in Python: the same
    reading on every engine)."""
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
    )
    return [tuple(row) for row in db.conn.execute(query).fetchall()]


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _oracle(db: EngineDB, at: date) -> tuple[set[int], int, int]:
    last: dict[int, date] = {}
    for key, end, cancelled in _rows(db, "sejours", "patient_id", "sortie", "annule"):
        if cancelled == "0":
            day = at if end is None else _day(end)
            last[key] = max(last.get(key, day), day)
    ranges = dict(_rows(db, "plagesconsult", "plageconsult_id", "date"))
    for key, range_id, cancelled in _rows(
        db, "consultations", "patient_id", "plageconsult_id", "annule"
    ):
        if cancelled == "0":
            day = ranges[range_id]
            last[key] = max(last.get(key, day), day)
    held = {
        int(k)
        for (k,) in db.conn.execute(
            sql.SQL("SELECT subject_key FROM {} WHERE released_at IS NULL").format(db.tool("holds"))
        )
    }
    due: set[int] = set()
    held_due = undeterminable = 0
    for key, text, death in _rows(db, "patients", "patient_id", "naissance", "deces"):
        birth = _birth(text)
        if birth is None or key not in last:
            undeterminable += 1
        elif _r1112_7(birth, death, last[key]) < at:  # kept through its last day
            if key in held:
                held_due += 1
            else:
                due.add(key)
    return due, held_due, undeterminable


def _related_rows(db: EngineDB, due: set[int]) -> dict[str, int]:
    """Rows of each table that belong to the due patients, walked by hand."""

    def owned(table: str, column: str = "patient_id", owners: set[Any] = due) -> list[Any]:
        return [k for k, owner in _rows(db, table, key_of(table), column) if owner in owners]

    def polymorphic(table: str, owners: dict[str, set[Any]]) -> list[Any]:
        return [
            k
            for k, cls, owner in _rows(db, table, key_of(table), "object_class", "object_id")
            if owner in owners.get(cls, set())
        ]

    stays = set(owned("sejours"))
    consults = set(owned("consultations"))
    owners = {"CPatient": due, "CSejour": stays, "CConsultation": consults}
    prescriptions = set(polymorphic("prescriptions", {"CSejour": stays, "CConsultation": consults}))
    counts: dict[str, int] = defaultdict(int)
    counts["patients"] = len(due)
    counts["sejours"] = len(stays)
    counts["consultations"] = len(consults)
    counts["prescriptions"] = len(prescriptions)
    for table in ("allergies", "contacts_urgence", "ins_patients"):
        counts[table] = len(owned(table))
    counts["prescription_lignes"] = len(
        owned("prescription_lignes", "prescription_id", prescriptions)
    )
    counts["dossiers_medicaux"] = len(polymorphic("dossiers_medicaux", {"CPatient": due}))
    for table in ("fichiers", "user_log"):
        counts[table] = len(polymorphic(table, owners))
    return {db.table(table): count for table, count in counts.items()}


def test_plan_counts_match_an_independent_oracle(engine_demo: EngineDB) -> None:
    conn = engine_demo.conn
    migrate(conn, engine_demo.tool_schema)
    first = sorted(k for (k,) in _rows(engine_demo, "patients", "patient_id"))[:40]
    for key in first:
        conn.execute(
            sql.SQL("INSERT INTO {} (policy, subject_key, reason) VALUES (%s, %s, 'claim')").format(
                engine_demo.tool("holds")
            ),
            ("dossier-medical", str(key)),
        )
    bound = policy(conn, "dossier-medical")
    phase = compute_plan(conn, [bound], AT, schema=engine_demo.tool_schema).policies[0].phases[0]
    due, held_due, undeterminable = _oracle(engine_demo, AT)
    assert len(due) > 20, "the generated data must have patients past their retention"
    assert phase.due_subjects == len(due)
    assert phase.held_subjects == held_due
    assert phase.undeterminable_subjects == undeterminable
    assert phase.rows == _related_rows(engine_demo, due)


def test_plan_at_a_later_date_finds_at_least_as_many(engine_demo: EngineDB) -> None:
    conn, tool = engine_demo.conn, engine_demo.tool_schema
    migrate(conn, tool)
    bound = policy(conn, "dossier-medical")
    now = compute_plan(conn, [bound], AT, schema=tool).policies[0].phases[0]
    later = compute_plan(conn, [bound], date(2040, 1, 1), schema=tool).policies[0].phases[0]
    due_later, _, _ = _oracle(engine_demo, date(2040, 1, 1))
    assert later.due_subjects == len(due_later)
    assert later.due_subjects > now.due_subjects
