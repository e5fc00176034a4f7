"""A legal hold protects the person, not one policy: without --policy it keeps the subject from
every policy on the same table and key (purge, archive, and the expiry of an archive made
before the claim); with --policy it is narrowed to that policy, and the command says so."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from retention.archive import catalog
from retention.settings import Settings
from retention.store.schema import migrate
from tests.archive_helpers import KeyPair, archive_policies, archive_settings, key_pair
from tests.clock_helpers import policy, statuses
from tests.engine_helpers import ROOT, cli, run, trail

ARCHIVING = "archivage-patients"


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return key_pair(tmp_path / "keys")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two policies on patients: dossier-medical (purge) and another one that archives."""
    archive = archive_policies(tmp_path / "archive-only") / "dossier-medical.yaml"
    text = archive.read_text(encoding="utf-8").replace(
        "name: dossier-medical", f"name: {ARCHIVING}", 1
    )
    out = tmp_path / "policies"
    out.mkdir()
    (out / f"{ARCHIVING}.yaml").write_text(text, encoding="utf-8")
    (out / "dossier-medical.yaml").write_bytes(
        (ROOT / "policies" / "dossier-medical.yaml").read_bytes()
    )
    return out


@pytest.fixture
def config(demo_db_url: str, tmp_path: Path, folder: Path, keys: KeyPair) -> Settings:
    return archive_settings(demo_db_url, folder, tmp_path / "archive", [keys.recipient])


def _due_under_both(conn: psycopg.Connection[Any], folder: Path) -> list[int]:
    migrate(conn)
    purge = statuses(conn, policy(conn, "dossier-medical", folder), date.today())
    archive = statuses(conn, policy(conn, ARCHIVING, folder), date.today())
    return sorted(k for k, s in purge.items() if s.is_due and archive[k].is_due)


def cli_ok(url: str, *args: str, folder: Path) -> str:
    done = cli(url, *args, policies=folder)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _in_archives(conn: psycopg.Connection[Any], config: Settings, key: int) -> bool:
    digest = trail(conn, config).subject_digest(ARCHIVING, key)
    return any(
        digest in s.subject_digests
        for f in catalog.files(conn, "retention")
        for s in f.live_segments()
    )


def _patient(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT count(*) FROM patients WHERE patient_id = %s", (key,)).fetchone()
    return row == (1,)


def test_a_hold_without_policy_keeps_the_person_from_every_policy_on_the_table(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, folder: Path, config: Settings
) -> None:
    due = _due_under_both(demo_conn, folder)
    person, narrowed = due[0], due[1]
    out = cli_ok(demo_db_url, "hold", "add", "--subject", str(person), "--reason", "claim 2026-17",
                 folder=folder)  # fmt: skip
    assert "for every policy on public.patients (patient_id)" in out
    out = cli_ok(demo_db_url, "hold", "add", "--policy", "dossier-medical", "--subject",
                 str(narrowed), "--reason", "claim 2026-18", folder=folder)  # fmt: skip
    assert "for policy dossier-medical only" in out and "narrowed" in out
    report = run(demo_conn, config)
    acted = {p.policy: p.acted for p in report.phases}
    assert acted[ARCHIVING] > 0  # the others due were archived
    # the person held everywhere: neither archived nor purged, every row still in place
    assert _patient(demo_conn, person) and not _in_archives(demo_conn, config, person)
    assert demo_conn.execute(
        "SELECT count(*) FROM sejours WHERE patient_id = %s", (person,)
    ).fetchone() != (0,)
    # the hold narrowed to dossier-medical does not stop the other policy
    assert not _patient(demo_conn, narrowed) and _in_archives(demo_conn, config, narrowed)
    listed = cli_ok(demo_db_url, "hold", "list", "--policy", ARCHIVING, folder=folder)
    assert "* public.patients" in listed and "dossier-medical" not in listed


def test_an_archive_of_a_person_held_after_archiving_is_not_destroyed_at_expiry(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, folder: Path, config: Settings
) -> None:
    person = _due_under_both(demo_conn, folder)[0]
    run(demo_conn, config)
    assert not _patient(demo_conn, person) and _in_archives(demo_conn, config, person)
    # the claim comes once the record is archived: the person is held without naming a policy
    cli_ok(demo_db_url, "hold", "add", "--subject", str(person), "--reason", "claim 2041-3",
           folder=folder)  # fmt: skip
    files = catalog.files(demo_conn, "retention")
    latest = max(s.expires_on for f in files for s in f.segments if s.expires_on)
    run(demo_conn, config, at=date(latest.year + 1, 1, 1))
    expired = demo_conn.execute(
        "SELECT count(*) FROM retention.audit WHERE event = 'archive_expired'"
    ).fetchone()
    assert expired is not None and expired[0] > 0  # the groups of the others were destroyed
    assert _in_archives(demo_conn, config, person)  # the held person's group was kept
    release = cli_ok(demo_db_url, "hold", "release", "--subject", str(person), folder=folder)
    assert "released (every policy on public.patients (patient_id))" in release


def _legacy_hold(conn: psycopg.Connection[Any], policy_name: str, key: int) -> None:
    """A hold as recorded before holds had a scope: a policy, no subject table."""
    conn.execute(
        "INSERT INTO retention.holds (policy, subject_key, reason) VALUES (%s, %s, 'claim 2019-4')",
        (policy_name, str(key)),
    )


def test_a_hold_recorded_before_scopes_holds_the_person_under_every_policy_on_the_table(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, folder: Path, config: Settings
) -> None:
    person, narrowed = _due_under_both(demo_conn, folder)[:2]
    _legacy_hold(demo_conn, "dossier-medical", person)
    cli_ok(demo_db_url, "hold", "add", "--policy", "dossier-medical", "--subject",
           str(narrowed), "--reason", "claim 2026-18", folder=folder)  # fmt: skip
    archiving = policy(demo_conn, ARCHIVING, folder)
    assert statuses(demo_conn, archiving, date.today())[person].held
    assert not statuses(demo_conn, archiving, date.today())[narrowed].held
    run(demo_conn, config)
    assert _patient(demo_conn, person) and not _in_archives(demo_conn, config, person)
    assert not _patient(demo_conn, narrowed)  # a hold narrowed since scopes exist stays so
    listed = cli_ok(demo_db_url, "hold", "list", folder=folder)
    assert "dossier-medical+" in listed and "recorded before holds had a scope" in listed


def test_an_archive_held_by_a_hold_recorded_before_scopes_is_kept_at_expiry(
    demo_conn: psycopg.Connection[Any], folder: Path, config: Settings
) -> None:
    person = _due_under_both(demo_conn, folder)[0]
    run(demo_conn, config)
    assert _in_archives(demo_conn, config, person)
    # recorded under the other policy on patients, which never archived this person
    _legacy_hold(demo_conn, "dossier-medical", person)
    files = catalog.files(demo_conn, "retention")
    latest = max(s.expires_on for f in files for s in f.segments if s.expires_on)
    run(demo_conn, config, at=date(latest.year + 1, 1, 1))
    assert _in_archives(demo_conn, config, person)
