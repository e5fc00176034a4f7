"""The 24-month forecast says, for every month end, exactly what `retention plan --at` says."""

from __future__ import annotations

import itertools
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.audit.approvals import Rules
from retention.plan.compute import compute_plan
from retention.policy.check import bound_policies
from retention.report.forecast import compute_forecast, month_ends
from retention.store.schema import migrate
from tests.engine_helpers import ROOT, run, settings
from tests.test_report_support import AT, due_record_keys, hold, minimise_by_hand

POLICIES = ROOT / "policies"


def _plans_agree(conn: psycopg.Connection[Any], policies_dir: Path, today: date) -> None:
    policies = bound_policies(conn, policies_dir)
    forecast = compute_forecast(conn, policies, today, approvals=Rules(2))
    assert len(forecast.dates) == 25 and forecast.dates[0] == today
    for index, at in enumerate(forecast.dates):
        plan = compute_plan(conn, policies, at, rows=False)
        expected = [
            (p.name, phase.name, phase.due_subjects, phase.held_subjects)
            for p in plan.policies
            for phase in p.phases
        ]
        found = [(f.policy, f.phase, f.due[index], f.held[index]) for f in forecast.phases]
        assert found == expected, f"month end {at}"


@pytest.fixture
def ready(demo_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Holds (active and released), stays still open, patients already minimised."""
    migrate(demo_conn)
    hold(demo_conn, "dossier-medical", due_record_keys(demo_conn, 3))
    hold(demo_conn, "dossier-medical", due_record_keys(demo_conn, 5)[3:], released=True)
    first = [r[0] for r in demo_conn.execute("SELECT patient_id FROM patients ORDER BY 1 LIMIT 6")]
    hold(demo_conn, "contacts-patients", first[:2])
    minimise_by_hand(demo_conn, first[2:])
    # a patient still in hospital: the stay counts as "today", so the due date moves with it
    demo_conn.execute(
        "UPDATE sejours SET sortie = NULL WHERE sejour_id IN "
        "(SELECT max(sejour_id) FROM sejours WHERE annule = '0' GROUP BY patient_id "
        "ORDER BY 1 LIMIT 5)"
    )
    return demo_conn


def test_every_month_equals_plan_at_that_month_end(ready: psycopg.Connection[Any]) -> None:
    _plans_agree(ready, POLICIES, AT)


def test_after_a_run_every_month_still_equals_plan(
    ready: psycopg.Connection[Any], demo_db_url: str
) -> None:
    run(ready, settings(demo_db_url), at=AT)
    _plans_agree(ready, POLICIES, AT)
    forecast = compute_forecast(ready, bound_policies(ready, POLICIES), AT)
    assert all(p.due[0] == 0 for p in forecast.phases)  # nothing due right after a run
    assert any(p.due[-1] > 0 for p in forecast.phases)  # but more will come


def test_a_due_date_that_moves_with_today_is_computed_month_by_month(
    ready: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """`today` inside a due date: every subject's clock moves between the month ends (here a
    condition on today flips in the middle of the window), so none can be bucketed."""
    (tmp_path / "p.yaml").write_text(
        textwrap.dedent(
            """
            name: moving
            subject: {table: patients, key: patient_id}
            dates:
              naissance: {column: naissance, format: YYYY-MM-DD}
            retain_until: naissance + 90 years
            phases:
              - name: odd
                due: >-
                  if today < date '2026-01-15' then naissance + 100 years
                  else naissance + 60 years
                action: purge
            """
        ),
        encoding="utf-8",
    )
    _plans_agree(ready, tmp_path, AT)
    odd = compute_forecast(ready, bound_policies(ready, tmp_path), AT).phases[0]
    assert odd.due[8] > 3 * odd.due[7] > 0  # the condition flipped in January 2026


def test_holds_and_approvals_are_visible(ready: psycopg.Connection[Any]) -> None:
    forecast = compute_forecast(ready, bound_policies(ready, POLICIES), AT, approvals=Rules(2))
    by_label = {p.label: p for p in forecast.phases}
    record = by_label["dossier-medical/destruction"]
    assert record.active_holds == 3 and 0 < record.held[0] <= 3  # (one may have an open stay)
    assert record.approval is not None and not record.approval.approved
    assert record.approval.required == 2 and record.approval.given == 0
    assert by_label["contacts-patients/coordonnees"].approval is None  # an erase needs none
    assert record.newly_due[0] == record.due[0]
    assert sum(record.newly_due) == record.due[-1]


@pytest.mark.parametrize(
    ("today", "first", "last"),
    [
        (date(2025, 6, 1), date(2025, 6, 30), date(2027, 5, 31)),
        (date(2025, 6, 30), date(2025, 7, 31), date(2027, 6, 30)),
        (date(2023, 12, 31), date(2024, 1, 31), date(2025, 12, 31)),
        (date(2024, 1, 31), date(2024, 2, 29), date(2026, 1, 31)),
    ],
)
def test_month_ends_are_the_24_after_today(today: date, first: date, last: date) -> None:
    ends = month_ends(today)
    assert len(ends) == 24 and ends[0] == first and ends[-1] == last
    assert all(a < b for a, b in itertools.pairwise(ends))
