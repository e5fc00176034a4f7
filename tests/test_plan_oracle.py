"""`plan` counts against an independent computation in Python on generated data."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import psycopg

from retention.plan.compute import compute_plan
from retention.store.schema import migrate
from tests.clock_helpers import policy
from tests.fix_db import DemoTemplate

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
    if death is not None and death < _add_years(last, 10):
        return _add_years(death, 10)
    return max(_add_years(last, 20), _add_years(birth, 28))


def _oracle(conn: psycopg.Connection[Any], at: date) -> tuple[set[int], int, int]:
    last: dict[int, date] = {}
    for key, end in conn.execute(
        "SELECT patient_id, coalesce(sortie::date, %s) FROM sejours WHERE annule = '0'", (at,)
    ):
        last[key] = max(last.get(key, end), end)
    for key, day in conn.execute(
        "SELECT c.patient_id, p.date FROM consultations c "
        "JOIN plagesconsult p USING (plageconsult_id) WHERE c.annule = '0'"
    ):
        last[key] = max(last.get(key, day), day)
    held = {
        int(k)
        for (k,) in conn.execute(
            "SELECT subject_key FROM retention.holds WHERE released_at IS NULL"
        )
    }
    due: set[int] = set()
    held_due = undeterminable = 0
    for key, text, death in conn.execute("SELECT patient_id, naissance, deces FROM patients"):
        birth = _birth(text)
        if birth is None or key not in last:
            undeterminable += 1
        elif _r1112_7(birth, death, last[key]) < at:  # kept through its last day
            if key in held:
                held_due += 1
            else:
                due.add(key)
    return due, held_due, undeterminable


def _related_rows(conn: psycopg.Connection[Any], due: set[int]) -> dict[str, int]:
    """Rows of each table that belong to the due patients, walked by hand."""
    keys = list(due)

    def one(query: str, params: tuple[Any, ...] | None = None) -> list[Any]:
        return conn.execute(query, params).fetchall()

    stays = [r[0] for r in one("SELECT sejour_id FROM sejours WHERE patient_id = ANY(%s)", (keys,))]
    consults = [
        r[0]
        for r in one(
            "SELECT consultation_id FROM consultations WHERE patient_id = ANY(%s)", (keys,)
        )
    ]
    owners = {"CPatient": keys, "CSejour": stays, "CConsultation": consults}
    prescriptions = [
        r[0]
        for r in one(
            "SELECT prescription_id FROM prescriptions WHERE (object_class = 'CSejour' AND "
            "object_id = ANY(%s)) OR (object_class = 'CConsultation' AND object_id = ANY(%s))",
            (stays, consults),
        )
    ]
    counts: dict[str, int] = defaultdict(int)
    counts["public.patients"] = len(keys)
    counts["public.sejours"] = len(stays)
    counts["public.consultations"] = len(consults)
    counts["public.prescriptions"] = len(prescriptions)
    for table in ("allergies", "contacts_urgence", "ins_patients"):
        counts[f"public.{table}"] = one(
            f"SELECT count(*) FROM {table} WHERE patient_id = ANY(%s)", (keys,)
        )[0][0]
    counts["public.prescription_lignes"] = one(
        "SELECT count(*) FROM prescription_lignes WHERE prescription_id = ANY(%s)", (prescriptions,)
    )[0][0]
    counts["public.dossiers_medicaux"] = one(
        "SELECT count(*) FROM dossiers_medicaux WHERE object_class = 'CPatient' "
        "AND object_id = ANY(%s)",
        (keys,),
    )[0][0]
    for table in ("fichiers", "user_log"):
        counts[f"public.{table}"] = sum(
            one(
                f"SELECT count(*) FROM {table} WHERE object_class = %s AND object_id = ANY(%s)",
                (cls, ids),
            )[0][0]
            for cls, ids in owners.items()
        )
    return dict(counts)


def test_plan_counts_match_an_independent_oracle(
    demo_conn: psycopg.Connection[Any], demo_template: DemoTemplate
) -> None:
    migrate(demo_conn)
    demo_conn.execute(
        "INSERT INTO retention.holds (policy, subject_key, reason) "
        "SELECT 'dossier-medical', patient_id::text, 'claim' FROM patients "
        "ORDER BY patient_id LIMIT 40"
    )
    bound = policy(demo_conn, "dossier-medical")
    phase = compute_plan(demo_conn, [bound], AT).policies[0].phases[0]
    due, held_due, undeterminable = _oracle(demo_conn, AT)
    assert len(due) > 20, "the generated data must have patients past their retention"
    assert phase.due_subjects == len(due)
    assert phase.held_subjects == held_due
    assert phase.undeterminable_subjects == undeterminable
    assert phase.rows == _related_rows(demo_conn, due)


def test_plan_at_a_later_date_finds_at_least_as_many(demo_conn: psycopg.Connection[Any]) -> None:
    migrate(demo_conn)
    bound = policy(demo_conn, "dossier-medical")
    now = compute_plan(demo_conn, [bound], AT).policies[0].phases[0]
    later = compute_plan(demo_conn, [bound], date(2040, 1, 1)).policies[0].phases[0]
    due_later, _, _ = _oracle(demo_conn, date(2040, 1, 1))
    assert later.due_subjects == len(due_later)
    assert later.due_subjects > now.due_subjects
