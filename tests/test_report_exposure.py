"""`retention exposure`: its figures against an independent SQL computation on the demo data,
before and after a run, and the snapshot stored at the end of every run."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from loguru import logger

from retention.archive.catalog import insert
from retention.archive.model import ArchiveFile, Segment
from retention.policy.check import bound_policies
from retention.report.exposure import NO_ARCHIVE, NO_SCAN, Exposure, compute_exposure
from retention.report.snapshots import record_after_run, snapshots
from retention.report.text import render_exposure
from retention.store.schema import migrate
from tests.clock_helpers import policy, statuses
from tests.engine_helpers import ROOT, cli, run, settings
from tests.test_report_support import (
    AT,
    due_record_keys,
    hold,
    independent_exposure,
    minimise_by_hand,
    save_demo_inventory,
    tool_figures,
)
from tests.test_slices import slice_small_tables

POLICIES = ROOT / "policies"
AT_TIME = datetime(2025, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def ready(demo_conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """The demo data with its inventory, legal holds and a few patients already minimised."""
    migrate(demo_conn)
    save_demo_inventory(demo_conn)
    hold(demo_conn, "dossier-medical", due_record_keys(demo_conn, 3))
    hold(demo_conn, "dossier-medical", due_record_keys(demo_conn, 5)[3:], released=True)
    first = [r[0] for r in demo_conn.execute("SELECT patient_id FROM patients ORDER BY 1 LIMIT 6")]
    hold(demo_conn, "contacts-patients", first[:1])
    minimise_by_hand(demo_conn, first[1:])
    return demo_conn


def _exposure(conn: psycopg.Connection[Any], at: date) -> Exposure:
    return compute_exposure(conn, bound_policies(conn, POLICIES), at)


@pytest.mark.parametrize("at", [AT, date(2027, 3, 31)])
def test_exposure_equals_an_independent_sql_computation(
    ready: psycopg.Connection[Any], at: date
) -> None:
    tool = tool_figures(_exposure(ready, at).to_json())
    expected = independent_exposure(ready, at)
    assert tool == expected
    patients = expected["public.patients"]
    # the data exercises every figure
    assert patients["past_retention"] > 20
    assert patients["contact_beyond_minimisation"] > 20
    assert 0 < patients["with_direct_identifiers"] < patients["subjects"]
    assert patients["held"] == 4
    assert set(patients["undeterminable_reasons"]) == {
        "naissance",
        "no due date (e.g. no recorded visit)",
    }


@pytest.mark.parametrize("at", [AT, date(2027, 3, 31)])
def test_a_sliced_exposure_equals_the_independent_computation(
    ready: psycopg.Connection[Any], demo_db_url: str, monkeypatch: pytest.MonkeyPatch, at: date
) -> None:
    """Two more connections, each materialising the clocks of a slice of the patients."""
    sliced = slice_small_tables(monkeypatch)
    with (
        psycopg.connect(demo_db_url, autocommit=True) as one,
        psycopg.connect(demo_db_url, autocommit=True) as two,
    ):
        policies = bound_policies(ready, POLICIES)
        tool = compute_exposure(ready, policies, at, helpers=[one, two])
    assert sliced and set(sliced) == {3}  # every population, on three connections
    assert tool_figures(tool.to_json()) == independent_exposure(ready, at)
    assert tool == _exposure(ready, at)


def test_a_run_brings_past_retention_and_contact_data_to_zero(
    ready: psycopg.Connection[Any], demo_db_url: str
) -> None:
    before = _exposure(ready, AT).population("public.patients")
    assert before is not None and before.past_retention
    run(ready, settings(demo_db_url), at=AT)
    after = _exposure(ready, AT)
    assert tool_figures(after.to_json()) == independent_exposure(ready, AT)
    patients = after.population("public.patients")
    assert patients is not None
    assert patients.past_retention == 0
    assert patients.contact_beyond_minimisation == 0
    assert patients.held == before.held  # held patients stay, their clock suspended
    assert patients.subjects == before.subjects - before.past_retention


def test_every_run_stores_a_snapshot_of_the_exposure_after_it(
    ready: psycopg.Connection[Any], demo_db_url: str
) -> None:
    first = run(ready, settings(demo_db_url), at=AT)
    second = run(ready, settings(demo_db_url), at=AT)
    stored = snapshots(ready, "retention")
    assert [s.run_id for s in stored] == [first.run_id, second.run_id]
    assert [s.outcome for s in stored] == ["completed", "completed"]
    assert stored[-1].exposure.to_json() == _exposure(ready, AT).to_json()
    assert stored[0].exposure.population("public.patients").past_retention == 0  # type: ignore[union-attr]


def test_a_snapshot_that_cannot_be_stored_does_not_fail_the_run(
    ready: psycopg.Connection[Any], demo_db_url: str
) -> None:
    ready.execute(
        "CREATE FUNCTION retention.refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'no snapshots here'; END $$"
    )
    ready.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON retention.exposure "
        "FOR EACH ROW EXECUTE FUNCTION retention.refuse()"
    )
    messages: list[str] = []
    sink = logger.add(messages.append, level="WARNING", format="{message}")
    try:
        report = run(ready, settings(demo_db_url), at=AT)
    finally:
        logger.remove(sink)
    assert report.outcome == "completed"
    # the trigger's text is not kept (a RAISE can say anything): its class and SQLSTATE are
    assert any(
        "exposure snapshot not stored: RaiseException (SQLSTATE P0001)" in m for m in messages
    ), messages
    assert not any("no snapshots here" in m for m in messages)
    assert snapshots(ready, "retention") == []
    ended = ready.execute("SELECT outcome FROM retention.runs").fetchall()
    assert ended == [("completed",)]


def test_record_after_run_never_raises(demo_conn: psycopg.Connection[Any]) -> None:
    migrate(demo_conn)
    policies = bound_policies(demo_conn, POLICIES)
    demo_conn.execute("DROP TABLE retention.exposure")
    assert record_after_run(demo_conn, policies, AT, uuid4()) is None  # not installed
    demo_conn.execute("CREATE TABLE retention.exposure (snapshot_id int)")  # a wrong shape
    assert record_after_run(demo_conn, policies, AT, uuid4()) is None


def test_without_a_scan_identifier_figures_are_unknown_not_zero(
    demo_conn: psycopg.Connection[Any],
) -> None:
    migrate(demo_conn)
    patients = _exposure(demo_conn, AT).population("public.patients")
    assert patients is not None
    assert patients.with_direct_identifiers is None
    assert patients.contact_beyond_minimisation is None
    assert NO_SCAN in patients.notes
    assert patients.past_retention is not None and patients.past_retention > 0


@pytest.mark.parametrize("sliced", [False, True])
def test_without_a_scan_the_other_figures_equal_the_independent_computation(
    demo_conn: psycopg.Connection[Any],
    demo_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    sliced: bool,
) -> None:
    """Without a scan no figure reads the due subjects of a minimisation's clock (its table
    keeps the undeterminable ones only): the undeterminable subjects, their reasons and the
    other figures are those of the independent computation, on one connection or sliced."""
    migrate(demo_conn)
    hold(demo_conn, "dossier-medical", due_record_keys(demo_conn, 3))
    first = [r[0] for r in demo_conn.execute("SELECT patient_id FROM patients ORDER BY 1 LIMIT 6")]
    hold(demo_conn, "contacts-patients", first[:1])
    minimise_by_hand(demo_conn, first[1:])
    scan_figures = ("with_direct_identifiers", "contact_beyond_minimisation")
    expected = {
        table: {k: v for k, v in figures.items() if k not in scan_figures}
        for table, figures in independent_exposure(demo_conn, AT).items()
    }
    policies = bound_policies(demo_conn, POLICIES)
    with (
        psycopg.connect(demo_db_url, autocommit=True) as one,
        psycopg.connect(demo_db_url, autocommit=True) as two,
    ):
        if sliced:
            slice_small_tables(monkeypatch)
        exposure = compute_exposure(demo_conn, policies, AT, helpers=[one, two] if sliced else [])
    tool = {
        table: {k: v for k, v in figures.items() if k not in scan_figures}
        for table, figures in tool_figures(exposure.to_json()).items()
    }
    assert tool == expected
    patients = expected["public.patients"]
    assert patients["undeterminable"] > 0 and patients["past_retention"] > 0
    assert patients["held"] == 4


def test_without_the_tools_schema_the_figures_still_come(
    demo_conn: psycopg.Connection[Any],
) -> None:
    exposure = _exposure(demo_conn, AT)  # no `retention init`: no holds, no archives
    patients = exposure.population("public.patients")
    assert patients is not None and patients.held == 0 and patients.archived == 0
    assert NO_ARCHIVE in patients.notes
    assert exposure.population("public.user_log") is not None


def test_archived_subjects_are_counted_once_per_policy_until_destroyed(
    ready: psycopg.Connection[Any],
) -> None:
    assert _exposure(ready, AT).population("public.patients").archived == 0  # type: ignore[union-attr]
    assert NO_ARCHIVE not in _exposure(ready, AT).population("public.patients").notes  # type: ignore[union-attr]

    def segment(group: str, digests: tuple[str, ...]) -> Segment:
        return Segment(group, AT, len(digests), digests, {"public.patients": len(digests)}, 1, "x")

    def archive(policy: str, *segments: Segment) -> ArchiveFile:
        file_id = uuid4()
        return ArchiveFile(
            file_id,
            f"{policy}/2025/{file_id.hex}.v1.tar",
            1,
            None,
            policy,
            "0" * 64,
            "archivage",
            AT_TIME,
            1,
            "0" * 64,
            ("age1test",),
            segments,
        )

    insert(ready, "retention", archive("dossier-medical", segment("2030-01", ("a", "b", "c"))))
    insert(ready, "retention", archive("dossier-medical", segment("2031-01", ("c", "d"))))
    insert(ready, "retention", archive("journal-modifications", segment("2026-01", ("z",))))
    gone = archive("dossier-medical", segment("2020-01", ("e", "f")))
    insert(ready, "retention", gone)
    ready.execute(
        "UPDATE retention.archive_segments SET destroyed_at = now() WHERE file_id = %s",
        (gone.file_id,),
    )
    exposure = _exposure(ready, AT)
    assert exposure.population("public.patients").archived == 4  # type: ignore[union-attr]
    assert exposure.population("public.user_log").archived == 1  # type: ignore[union-attr]


def test_exposure_survives_its_json_round_trip(ready: psycopg.Connection[Any]) -> None:
    exposure = _exposure(ready, AT)
    assert Exposure.from_json(json.loads(json.dumps(exposure.to_json()))) == exposure


def test_exposure_command_prints_the_figures_in_french_english_and_json(
    ready: psycopg.Connection[Any], demo_db_url: str
) -> None:
    expected = independent_exposure(ready, AT)["public.patients"]
    french = cli(demo_db_url, "exposure", "--at", AT.isoformat())
    assert french.returncode == 0, french.stderr
    assert "Au-delà de la durée légale" in french.stdout
    assert f"{expected['past_retention']:,}".replace(",", "\u202f") in french.stdout
    english = cli(demo_db_url, "exposure", "--at", AT.isoformat(), "--lang", "en")
    assert "Past their legal retention" in english.stdout
    data = json.loads(
        cli(demo_db_url, "exposure", "--at", AT.isoformat(), "--format", "json").stdout
    )
    assert tool_figures(data)["public.patients"] == expected
    assert (
        english.stdout.strip()
        == render_exposure(Exposure.from_json(data), "en", "Europe/Paris").strip()
    )


def test_exposure_agrees_with_the_independent_computation_on_the_last_day_kept(
    ready: psycopg.Connection[Any],
) -> None:
    """The last day kept of a patient's record (the first after AT): on that day the record is
    not past its retention, the next day it is; the tool and the independent SQL agree on both
    days (an oracle comparing with <= would count it a day early)."""
    clock = statuses(ready, policy(ready, "dossier-medical"), AT)
    last = min(s.due for s in clock.values() if s.due and s.due > AT and not s.undeterminable)
    figures = []
    for at in (last, last + timedelta(days=1)):
        tool = tool_figures(_exposure(ready, at).to_json())
        assert tool == independent_exposure(ready, at)
        figures.append(tool["public.patients"]["past_retention"])
    assert figures[1] > figures[0]
