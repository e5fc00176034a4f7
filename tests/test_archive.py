"""`archive` phases on the demo hospital: records leave the live database into files the host
cannot read, verified before the delete commits; errors delete nothing; expiry and holds."""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pyrage
import pytest
from psycopg import sql
from pydantic import ValidationError

from retention.archive import catalog, container, restore
from retention.archive import groups as archive_groups
from retention.archive.errors import (
    ArchiveConfigError,
    ArchiveError,
    IdentityError,
)
from retention.archive.expiry import expire
from retention.archive.storage import LocalStorage
from retention.archive.verify import verify
from retention.errors import SettingsError
from retention.plan.clock import clock_query
from retention.policy.check import bound_policies
from retention.settings import Settings, load_settings
from retention.store.schema import holds_table, migrate
from tests.archive_helpers import KeyPair, archive_policies, archive_settings, key_pair
from tests.clock_helpers import policy, statuses
from tests.engine_helpers import run, trail
from tests.fix_db import DemoTemplate, temporary_database
from tests.test_run import table_counts as _counts
from tests.test_workers import _spy_batches

TODAY = date.today()


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return key_pair(tmp_path / "keys")


@pytest.fixture
def config(demo_db_url: str, tmp_path: Path, keys: KeyPair) -> Settings:
    return archive_settings(
        demo_db_url, archive_policies(tmp_path / "policies"), tmp_path / "archive",
        [keys.recipient], batch_size=40,
    )  # fmt: skip


def _archived(conn: psycopg.Connection[Any]) -> list[Any]:
    return catalog.files(conn, "retention")


def _decrypt_all(
    config: Settings, conn: psycopg.Connection[Any], identity: pyrage.x25519.Identity
) -> dict[str, list[dict[str, Any]]]:
    """Every archived row, per table, decrypted with the custodian's key."""
    assert config.archive_dir is not None
    storage = LocalStorage(config.archive_dir)
    rows: dict[str, list[dict[str, Any]]] = {}
    for item in _archived(conn):
        for segment in item.live_segments():
            _, inner = restore.open_segment(storage, restore.Found(item, segment), [identity])
            for name, data in inner.items():
                if name.startswith("tables/"):
                    table = name.removeprefix("tables/").removesuffix(".csv")
                    text = io.StringIO(data.decode("utf-8"), newline="")
                    rows.setdefault(table, []).extend(csv.DictReader(text))
    return rows


def test_archive_moves_every_related_row_out_into_encrypted_files(
    demo_conn: psycopg.Connection[Any], config: Settings, keys: KeyPair
) -> None:
    before = _counts(demo_conn)
    names = {r[0] for r in demo_conn.execute("SELECT nom FROM patients")}
    report = run(demo_conn, config)
    assert report.outcome == "completed", report
    phase = report.phases[0]
    assert phase.action == "archive" and phase.acted > 20
    after = _counts(demo_conn)
    moved = {t: before[t] - after[t] for t in before}
    assert moved["patients"] == phase.acted
    assert {f"public.{t}": n for t, n in moved.items() if n} == {
        t: n for t, n in phase.rows.items() if n
    }
    archived = _decrypt_all(config, demo_conn, keys.identity)
    assert {t.removeprefix("public."): len(r) for t, r in archived.items() if r} == {
        t: n for t, n in moved.items() if n
    }
    # Nothing personal in clear: the file's index and names hold digests and counts only.
    assert config.archive_dir is not None
    for path in config.archive_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            clear = container.read_tar(data)
            assert set(clear) >= {container.INDEX, container.README}
            readable = clear[container.INDEX] + path.name.encode()
            assert not any(n.encode() in readable for n in names if len(n) > 3)
            assert not any(f'"{n}"'.encode() in data for n in names)


def test_batch_audit_entry_names_the_file_and_its_hash(
    demo_conn: psycopg.Connection[Any], config: Settings
) -> None:
    run(demo_conn, config)
    entries = demo_conn.execute(
        "SELECT detail->'archive', subjects FROM retention.audit WHERE event = 'batch'"
    ).fetchall()
    files = {f.name: f for f in _archived(demo_conn)}
    assert len(entries) == len(files) > 1
    for detail, subjects in entries:
        item = files[detail["file"]]
        assert detail["sha256"] == item.sha256 and detail["bytes"] == item.bytes
        assert sum(detail["groups"].values()) == subjects
        assert config.archive_dir is not None
        on_disk = (config.archive_dir / item.name).read_bytes()
        assert container.sha256(on_disk) == item.sha256


def test_groups_follow_retain_until_months_and_undeterminable_clocks(
    demo_conn: psycopg.Connection[Any], config: Settings
) -> None:
    run(demo_conn, config)
    groups = {s.group: s for f in _archived(demo_conn) for s in f.segments}
    for group, segment in groups.items():
        if group == "undated":
            assert segment.expires_on is None
        else:
            year, month = map(int, group.split("-"))
            assert segment.expires_on is not None
            assert (segment.expires_on.year, segment.expires_on.month) == (year, month)
            assert (segment.expires_on + timedelta(days=1)).day == 1  # the month's last day


def test_two_recipients_each_decrypt_and_the_host_needs_neither_private_key(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, tmp_path: Path
) -> None:
    custodian, backup = key_pair(tmp_path / "k1"), key_pair(tmp_path / "k2", "backup")
    config = archive_settings(
        demo_db_url, archive_policies(tmp_path / "p"), tmp_path / "a",
        [custodian.recipient, backup.recipient],
    )  # fmt: skip
    run(demo_conn, config)
    one = _decrypt_all(config, demo_conn, custodian.identity)
    two = _decrypt_all(config, demo_conn, backup.identity)
    assert one == two and one
    stranger = pyrage.x25519.Identity.generate()
    with pytest.raises(IdentityError, match="no given identity decrypts"):
        _decrypt_all(config, demo_conn, stranger)


def test_restore_into_the_database_gives_back_identical_rows(
    demo_conn: psycopg.Connection[Any], config: Settings, keys: KeyPair
) -> None:
    due = _due(demo_conn, config)
    subject = demo_conn.execute(
        "SELECT p.patient_id FROM patients p JOIN sejours s USING (patient_id) "
        "JOIN prescriptions pr ON pr.object_class = 'CSejour' AND pr.object_id = s.sejour_id "
        "JOIN allergies a USING (patient_id) WHERE p.patient_id = ANY(%s) ORDER BY 1 LIMIT 1",
        (due,),
    ).fetchone()
    assert subject is not None
    original = _record_text(demo_conn, subject[0])
    run(demo_conn, config)
    assert _record_text(demo_conn, subject[0]) == {t: [] for t in original}
    audit = trail(demo_conn, config)
    found = restore.find(demo_conn, "retention", audit, str(subject[0]), None)
    assert len(found) == 1
    assert config.archive_dir is not None
    record = restore.load(
        demo_conn, LocalStorage(config.archive_dir), found[0], [keys.identity], str(subject[0])
    )
    restore.into_database(demo_conn, "retention", audit, record, str(subject[0]))
    assert _record_text(demo_conn, subject[0]) == original
    row = demo_conn.execute(
        "SELECT outcome, subjects, detail->>'destination' FROM retention.audit "
        "WHERE event = 'archive_restored'"
    ).fetchone()
    assert row == ("restored", 1, "database")
    with pytest.raises(ArchiveError, match="already in the database"):
        restore.into_database(demo_conn, "retention", audit, record, str(subject[0]))


def _due(conn: psycopg.Connection[Any], config: Settings) -> list[int]:
    migrate(conn)
    bound = policy(conn, "dossier-medical", config.policies_dir)
    return sorted(k for k, s in statuses(conn, bound, TODAY).items() if s.is_due)


def _record_text(conn: psycopg.Connection[Any], patient: int) -> dict[str, list[str]]:
    """Every row of one patient's record as PostgreSQL text, per table."""
    queries = {
        "patients": "SELECT t::text FROM patients t WHERE patient_id = %(p)s",
        "sejours": "SELECT t::text FROM sejours t WHERE patient_id = %(p)s",
        "consultations": "SELECT t::text FROM consultations t WHERE patient_id = %(p)s",
        "allergies": "SELECT t::text FROM allergies t WHERE patient_id = %(p)s",
        "contacts_urgence": "SELECT t::text FROM contacts_urgence t WHERE patient_id = %(p)s",
        "prescriptions": "SELECT t::text FROM prescriptions t WHERE (object_class = 'CSejour' "
        "AND object_id IN (SELECT sejour_id FROM sejours WHERE patient_id = %(p)s)) OR "
        "(object_class = 'CConsultation' AND object_id IN (SELECT consultation_id FROM "
        "consultations WHERE patient_id = %(p)s))",
        "user_log": "SELECT t::text FROM user_log t WHERE object_class = 'CPatient' "
        "AND object_id = %(p)s",
    }
    return {
        table: sorted(r[0] for r in conn.execute(query, {"p": patient}))
        for table, query in queries.items()
    }


def test_missing_archive_dir_or_keys_refuse_before_anything_is_deleted(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, tmp_path: Path, keys: KeyPair
) -> None:
    policies = archive_policies(tmp_path / "p")
    before = _counts(demo_conn)
    no_dir = archive_settings(demo_db_url, policies, tmp_path / "a", [keys.recipient])
    no_dir = no_dir.model_copy(update={"archive_dir": None})
    with pytest.raises(ArchiveConfigError, match="archive_dir is not set"):
        run(demo_conn, no_dir)
    no_keys = archive_settings(demo_db_url, policies, tmp_path / "a", [])
    with pytest.raises(ArchiveConfigError, match="archive_recipients is empty"):
        run(demo_conn, no_keys)
    gone = archive_settings(demo_db_url, policies, tmp_path / "b", [keys.recipient])
    (tmp_path / "b").rmdir()
    with pytest.raises(ArchiveConfigError, match="does not exist"):
        run(demo_conn, gone)
    assert _counts(demo_conn) == before
    with pytest.raises(ValidationError, match="archive_recipients"):
        archive_settings(demo_db_url, policies, tmp_path / "a", ["age1notakey"])
    with pytest.raises(ValidationError, match="must start with 'age1'"):
        archive_settings(demo_db_url, policies, tmp_path / "a", ["ssh-ed25519 AAAA"])


def test_invalid_public_key_in_the_environment_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RETENTION_ARCHIVE_RECIPIENTS", "age1qqqq, age1")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "archive_recipients" in caught.value.message
    assert "item 1" in caught.value.message and "item 2" in caught.value.message


def _mount_tmpfs(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("size=48k,mode=0700", "no space left on the archive destination"),
        ("size=4m,mode=0700,ro", "read-only"),
    ],
    ids=["disk-full", "read-only"],
)
def test_full_or_read_only_destination_deletes_nothing(
    demo_conn: psycopg.Connection[Any],
    demo_db_url: str,
    tmp_path: Path,
    keys: KeyPair,
    options: str,
    message: str,
) -> None:
    folder = tmp_path / "small"
    if not _mount_tmpfs(folder, options):
        pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
    try:
        config = archive_settings(
            demo_db_url, archive_policies(tmp_path / "p"), folder, [keys.recipient],
            batch_size=500,
        )  # fmt: skip
        before = _counts(demo_conn)
        report = run(demo_conn, config)
        assert message in (report.phases[0].error or "")
        failed = demo_conn.execute(
            "SELECT detail->>'error' FROM retention.audit WHERE event = 'batch_failed'"
        ).fetchall()
        assert len(failed) == 1 and message in (failed[0][0] or "")
        assert _counts(demo_conn) == before
        assert not [p for p in folder.rglob("*") if p.is_file()]  # no partial file left
        assert demo_conn.execute("SELECT count(*) FROM retention.archive_files").fetchone() == (0,)
        row = demo_conn.execute("SELECT outcome FROM retention.runs").fetchone()
        assert row == ("failed",)
    finally:
        _umount(folder)


def test_tampered_missing_and_unknown_files_are_named_by_verify(
    demo_conn: psycopg.Connection[Any], config: Settings
) -> None:
    run(demo_conn, config)
    assert config.archive_dir is not None
    storage = LocalStorage(config.archive_dir)
    assert verify(demo_conn, storage, "retention").ok
    files = _archived(demo_conn)
    altered, missing = files[0].name, files[1].name
    path = config.archive_dir / altered
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    (config.archive_dir / missing).unlink()
    (config.archive_dir / "stray.bin").write_bytes(b"x")
    report = verify(demo_conn, storage, "retention")
    problems = {p.name: p.what for p in report.problems}
    assert problems[altered].startswith("altered")
    assert problems[missing] == "missing"
    assert "unknown file" in problems["stray.bin"]
    assert len(problems) == 3


def test_verify_with_the_identity_decrypts_every_segment(
    demo_conn: psycopg.Connection[Any], config: Settings, keys: KeyPair
) -> None:
    run(demo_conn, config)
    assert config.archive_dir is not None
    report = verify(demo_conn, LocalStorage(config.archive_dir), "retention", [keys.identity])
    assert report.ok and report.decrypted == report.segments > 10


def test_expired_groups_are_destroyed_and_audited_unless_held(
    demo_conn: psycopg.Connection[Any], config: Settings, keys: KeyPair
) -> None:
    run(demo_conn, config)
    files = _archived(demo_conn)
    segments = [(f, s) for f in files for s in f.segments if s.expires_on]
    latest = max(s.expires_on for _, s in segments if s.expires_on)
    # a subject of the latest group is put on hold: that group must survive
    held_file, held_segment = next((f, s) for f, s in segments if s.expires_on == latest)
    digests = set(held_segment.subject_digests)
    audit = trail(demo_conn, config)
    archived_keys = _archived_keys(config, demo_conn, keys)
    held_key = next(
        k for k in archived_keys if audit.subject_digest("dossier-medical", k) in digests
    )
    demo_conn.execute(
        "INSERT INTO retention.holds (policy, subject_key, reason) VALUES ('dossier-medical', "
        "%s, 'claim 2041-3')",
        (str(held_key),),
    )
    run(demo_conn, config, at=date(latest.year + 1, 1, 1))  # (also archives new subjects)
    first = {f.file_id for f in files}
    left = {f.file_id: f for f in _archived(demo_conn) if f.file_id in first}
    kept = {held_file.file_id} | {
        f.file_id for f in files if any(not s.expires_on for s in f.segments)
    }
    assert set(left) == kept  # undated groups never expire by themselves
    for item in left.values():
        expected = {s.group for s in item.segments if s.expires_on is None}
        if item.file_id == held_file.file_id:
            expected.add(held_segment.group)
        assert {s.group for s in item.live_segments()} == expected
        assert item.version == 2 and item.name.endswith(".v2.tar")
    assert config.archive_dir is not None
    on_disk = {p.relative_to(config.archive_dir).as_posix() for p in config.archive_dir.rglob("*")}
    assert not {f.name for f in files} & on_disk  # every first version is gone
    assert {f.name for f in left.values()} <= on_disk
    destroyed = demo_conn.execute(
        "SELECT count(*), sum(subjects) FROM retention.audit WHERE event = 'archive_expired'"
    ).fetchone()
    assert destroyed is not None and destroyed[0] == len(files)
    assert verify(demo_conn, LocalStorage(config.archive_dir), "retention", [keys.identity]).ok


def test_an_archive_group_is_kept_through_its_last_day_and_destroyed_the_next(
    demo_conn: psycopg.Connection[Any], config: Settings
) -> None:
    run(demo_conn, config)
    latest = max(s.expires_on for f in _archived(demo_conn) for s in f.segments if s.expires_on)

    def live() -> set[str]:
        return {
            s.group
            for f in _archived(demo_conn)
            for s in f.live_segments()
            if s.expires_on == latest
        }

    assert config.archive_dir is not None
    storage = LocalStorage(config.archive_dir)
    audit = trail(demo_conn, config)
    groups = live()
    assert groups
    expire(demo_conn, storage, audit, "retention", latest, None)  # every earlier group goes
    assert live() == groups
    assert expire(demo_conn, storage, audit, "retention", latest + timedelta(days=1), None) > 0
    assert not live()


def _archived_keys(config: Settings, conn: psycopg.Connection[Any], keys: KeyPair) -> list[int]:
    rows = _decrypt_all(config, conn, keys.identity)
    return [r["patient_id"] for r in rows["public.patients"]]


def test_batch_recheck_gives_the_same_end_of_retention_as_the_archive_groups(
    demo_conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Archive groups come from the batch's re-check (one clock for both); it must give each
    subject exactly the end of retention `groups.retain_until` computes on its own, including
    NULL for the subjects whose end cannot be judged (an unreadable birth date is not needed
    by a phase due 5 years after the last visit, but it is by retain_until)."""
    migrate(demo_conn)
    bound = bound_policies(demo_conn, archive_policies(tmp_path / "p"))[0]
    phase = bound.phases[0]
    keys = [r[0] for r in demo_conn.execute("SELECT patient_id FROM patients ORDER BY 1")]
    holds = holds_table(demo_conn)
    at = date.today()
    expected = archive_groups.retain_until(demo_conn, bound, at, holds, keys)
    clock = clock_query(
        bound, phase, at, holds_table=holds, keys=sql.Placeholder("k"), with_retain_until=True
    )
    rows = demo_conn.execute(
        sql.SQL("SELECT k, retain_until FROM ({}) AS c").format(clock.query),
        {**clock.params, "k": keys},
    )
    found = dict(rows.fetchall())
    assert found == expected
    assert None in found.values() and len({v for v in found.values() if v}) > 100


def test_archive_batches_side_by_side_archive_the_same_rows(
    pg_admin_url: str,
    demo_template: DemoTemplate,
    tmp_path: Path,
    keys: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three workers writing files at once: the same rows leave the database and are in the
    archives, each batch's file verified and audited, as with batches one after the other."""
    policies = archive_policies(tmp_path / "policies")
    found: dict[int, tuple[Any, ...]] = {}
    for workers in (1, 3):
        with (
            temporary_database(pg_admin_url, demo_template.dbname) as url,
            psycopg.connect(url, autocommit=True) as conn,
        ):
            config = archive_settings(
                url, policies, tmp_path / f"archive-{workers}", [keys.recipient],
                batch_size=10, workers=workers,
            )  # fmt: skip
            seen = _spy_batches(monkeypatch) if workers > 1 else []
            report = run(conn, config, at=demo_template.today)
            assert report.outcome == "completed", report
            assert config.archive_dir is not None
            assert verify(conn, LocalStorage(config.archive_dir), "retention", [keys.identity]).ok
            rows = {  # a digest of each table's archived rows: no value in a failure's diff
                table: hashlib.sha256(
                    repr(sorted(tuple(sorted(r.items())) for r in chosen)).encode()
                ).hexdigest()
                for table, chosen in _decrypt_all(config, conn, keys.identity).items()
            }
            files = _archived(conn)
            entries = conn.execute(
                "SELECT count(*) FROM retention.audit WHERE event = 'batch'"
            ).fetchone()
            assert entries == (len(files),) and len(files) > 5
            found[workers] = (_counts(conn), rows, report.phases[0].acted)
            if workers > 1:  # the batches ran on several connections other than the run's
                backends = {pid for pid, _ in seen}
                assert len(backends) >= 2 and conn.info.backend_pid not in backends
    assert found[3] == found[1]


def test_a_folder_made_meanwhile_by_another_batch_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two batches writing their first file of a month at once: the second finds the folder
    made between its check and its mkdir, and writes into it."""
    storage = LocalStorage(tmp_path)
    storage.put("a/b/first.age", b"one")
    real = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: False if self.name == "b" else real(self))
    written = storage.put("a/b/second.age", b"two")
    assert written.size == 3 and (tmp_path / "a" / "b" / "second.age").read_bytes() == b"two"
