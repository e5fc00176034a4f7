"""A legal hold protects the person, not one policy: without --policy it keeps the subject from
every policy on the same table and key (purge, archive, and the expiry of an archive made
before the claim); with --policy it is narrowed to that policy, and the command says so."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from retention.archive import catalog
from retention.engines import sql
from retention.settings import Settings
from retention.store.schema import migrate
from tests.archive_helpers import KeyPair, archive_policies, archive_settings, key_pair
from tests.clock_helpers import policy, statuses
from tests.engine_helpers import ROOT, run, trail
from tests.fix_engines import EngineDB

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
def config(engine_demo: EngineDB, tmp_path: Path, folder: Path, keys: KeyPair) -> Settings:
    return archive_settings(
        engine_demo.url,
        folder,
        tmp_path / "archive",
        [keys.recipient],
        schema_name=engine_demo.tool_schema,
    )


def _due_under_both(db: EngineDB, folder: Path) -> list[int]:
    conn, tool = db.conn, db.tool_schema
    migrate(conn, tool)
    purge = statuses(conn, policy(conn, "dossier-medical", folder), date.today(), tool_schema=tool)
    archive = statuses(conn, policy(conn, ARCHIVING, folder), date.today(), tool_schema=tool)
    return sorted(k for k, s in purge.items() if s.is_due and archive[k].is_due)


def cli_ok(db: EngineDB, *args: str, folder: Path) -> str:
    done = db.cli(*args, policies=folder)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _in_archives(db: EngineDB, config: Settings, key: int) -> bool:
    digest = trail(db.conn, config).subject_digest(ARCHIVING, key)
    return any(
        digest in s.subject_digests
        for f in catalog.files(db.conn, db.tool_schema)
        for s in f.live_segments()
    )


def _patient(db: EngineDB, key: int) -> bool:
    return db.count("patients", "patient_id = %s", (key,)) == 1


def test_a_hold_without_policy_keeps_the_person_from_every_policy_on_the_table(
    engine_demo: EngineDB, folder: Path, config: Settings
) -> None:
    due = _due_under_both(engine_demo, folder)
    person, narrowed = due[0], due[1]
    out = cli_ok(engine_demo, "hold", "add", "--subject", str(person), "--reason", "claim 2026-17",
                 folder=folder)  # fmt: skip
    patients = engine_demo.table("patients")
    assert f"for every policy on {patients} (patient_id)" in out
    out = cli_ok(engine_demo, "hold", "add", "--policy", "dossier-medical", "--subject",
                 str(narrowed), "--reason", "claim 2026-18", folder=folder)  # fmt: skip
    assert "for policy dossier-medical only" in out and "narrowed" in out
    report = run(engine_demo.conn, config)
    acted = {p.policy: p.acted for p in report.phases}
    assert acted[ARCHIVING] > 0  # the others due were archived
    # the person held everywhere: neither archived nor purged, every row still in place
    assert _patient(engine_demo, person) and not _in_archives(engine_demo, config, person)
    assert engine_demo.count("sejours", "patient_id = %s", (person,)) != 0
    # the hold narrowed to dossier-medical does not stop the other policy
    assert not _patient(engine_demo, narrowed) and _in_archives(engine_demo, config, narrowed)
    listed = cli_ok(engine_demo, "hold", "list", "--policy", ARCHIVING, folder=folder)
    assert f"* {patients}" in listed and "dossier-medical" not in listed


def test_an_archive_of_a_person_held_after_archiving_is_not_destroyed_at_expiry(
    engine_demo: EngineDB, folder: Path, config: Settings
) -> None:
    person = _due_under_both(engine_demo, folder)[0]
    run(engine_demo.conn, config)
    assert not _patient(engine_demo, person) and _in_archives(engine_demo, config, person)
    # the claim comes once the record is archived: the person is held without naming a policy
    cli_ok(engine_demo, "hold", "add", "--subject", str(person), "--reason", "claim 2041-3",
           folder=folder)  # fmt: skip
    files = catalog.files(engine_demo.conn, engine_demo.tool_schema)
    latest = max(s.expires_on for f in files for s in f.segments if s.expires_on)
    run(engine_demo.conn, config, at=date(latest.year + 1, 1, 1))
    expired = engine_demo.conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE event = 'archive_expired'").format(
            engine_demo.tool("audit")
        )
    ).fetchone()
    assert expired is not None and expired[0] > 0  # the groups of the others were destroyed
    assert _in_archives(engine_demo, config, person)  # the held person's group was kept
    release = cli_ok(engine_demo, "hold", "release", "--subject", str(person), folder=folder)
    patients = engine_demo.table("patients")
    assert f"released (every policy on {patients} (patient_id))" in release


def _legacy_hold(db: EngineDB, policy_name: str, key: int) -> None:
    """A hold as recorded before holds had a scope: a policy, no subject table."""
    db.conn.execute(
        sql.SQL(
            "INSERT INTO {} (policy, subject_key, reason) VALUES (%s, %s, 'claim 2019-4')"
        ).format(db.tool("holds")),
        (policy_name, str(key)),
    )


def test_a_hold_recorded_before_scopes_holds_the_person_under_every_policy_on_the_table(
    engine_demo: EngineDB, folder: Path, config: Settings
) -> None:
    person, narrowed = _due_under_both(engine_demo, folder)[:2]
    _legacy_hold(engine_demo, "dossier-medical", person)
    cli_ok(engine_demo, "hold", "add", "--policy", "dossier-medical", "--subject",
           str(narrowed), "--reason", "claim 2026-18", folder=folder)  # fmt: skip
    archiving = policy(engine_demo.conn, ARCHIVING, folder)
    held = statuses(engine_demo.conn, archiving, date.today(), tool_schema=engine_demo.tool_schema)
    assert held[person].held
    assert not held[narrowed].held
    run(engine_demo.conn, config)
    assert _patient(engine_demo, person) and not _in_archives(engine_demo, config, person)
    assert not _patient(engine_demo, narrowed)  # a hold narrowed since scopes exist stays so
    listed = cli_ok(engine_demo, "hold", "list", folder=folder)
    assert "dossier-medical+" in listed and "recorded before holds had a scope" in listed


def test_an_archive_held_by_a_hold_recorded_before_scopes_is_kept_at_expiry(
    engine_demo: EngineDB, folder: Path, config: Settings
) -> None:
    person = _due_under_both(engine_demo, folder)[0]
    run(engine_demo.conn, config)
    assert _in_archives(engine_demo, config, person)
    # recorded under the other policy on patients, which never archived this person
    _legacy_hold(engine_demo, "dossier-medical", person)
    files = catalog.files(engine_demo.conn, engine_demo.tool_schema)
    latest = max(s.expires_on for f in files for s in f.segments if s.expires_on)
    run(engine_demo.conn, config, at=date(latest.year + 1, 1, 1))
    assert _in_archives(engine_demo, config, person)
