"""`retention archive list|verify|restore` and the reconciliation of files whose batch never
committed, as an operator and a custodian see them."""

from __future__ import annotations

import csv
import io
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from loguru import logger

from retention.archive import catalog
from retention.audit.anchor import read_copy
from retention.cli.main import main
from tests.archive_helpers import KeyPair, archive_policies, key_pair
from tests.engine_helpers import AUDIT_KEY, run, settings
from tests.key_helpers import AUDIT_SIGNING_KEY


@pytest.fixture(autouse=True)
def _logs_back_to_stderr() -> Iterator[None]:
    """`main` points the logs at the captured stderr of its test; put them back after."""
    yield
    logger.remove()
    logger.add(sys.stderr, level="INFO")


@pytest.fixture
def keys(tmp_path: Path) -> KeyPair:
    return key_pair(tmp_path / "keys")


@pytest.fixture
def archived(
    demo_conn: psycopg.Connection[Any],
    demo_db_url: str,
    tmp_path: Path,
    keys: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The demo hospital after one archive run; the CLI's environment points at it."""
    folder = tmp_path / "archive"
    folder.mkdir()
    policies = archive_policies(tmp_path / "policies")
    for name, value in {
        "DATABASE_URL": demo_db_url,
        "AUDIT_KEY": AUDIT_KEY,
        "AUDIT_SIGNING_KEY": AUDIT_SIGNING_KEY,
        "POLICIES_DIR": str(policies),
        "ARCHIVE_DIR": str(folder),
        "ARCHIVE_RECIPIENTS": keys.recipient,
        "REQUIRED_APPROVALS": "0",
    }.items():
        monkeypatch.setenv(f"RETENTION_{name}", value)
    config = settings(demo_db_url, policies, archive_dir=folder,
                      archive_recipients=(keys.recipient,), batch_size=60)  # fmt: skip
    warnings: list[str] = []
    sink = logger.add(warnings.append, format="{message}", level="WARNING")
    try:
        assert run(demo_conn, config).outcome == "completed"
    finally:
        logger.remove(sink)
    # the run says which subjects' archives never expire by themselves (an outside review:
    # only `archive list` showed them)
    undated = [w for w in warnings if "archived without an end of retention" in w]
    assert undated and all("group 'undated'" in w for w in undated), warnings
    return folder


def _archived_subject(conn: psycopg.Connection[Any]) -> str:
    """A patient archived with stays (the test does not know keys: it asks the audit)."""
    gone = conn.execute(
        "SELECT s.patient_id FROM generate_series(1, 300) AS s(patient_id) "
        "WHERE NOT EXISTS (SELECT 1 FROM patients p WHERE p.patient_id = s.patient_id) "
        "ORDER BY 1 LIMIT 1"
    ).fetchone()
    assert gone is not None
    return str(gone[0])


def test_list_shows_groups_counts_and_expiry_without_personal_values(
    archived: Path, demo_conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    names = [r[0] for r in demo_conn.execute("SELECT nom FROM patients")]
    assert main(["archive", "list"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["policy", "group", "files"]
    groups = {s.group for f in catalog.files(demo_conn, "retention") for s in f.segments}
    assert {line.split()[1] for line in lines[1:]} == groups
    assert "never" in out and "undated" in out
    assert "expired (destroyed at the next run)" in out
    assert not any(n in out for n in names if len(n) > 3)


def test_verify_exits_1_and_names_the_tampered_file(
    archived: Path, demo_conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["archive", "verify"]) == 0
    assert "archives intact" in capsys.readouterr().out
    victim = catalog.files(demo_conn, "retention")[1].name
    with (archived / victim).open("r+b") as handle:
        handle.seek(2000)
        handle.write(b"tampered")
    assert main(["archive", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"PROBLEM {victim}: altered" in out
    assert "1 problem(s)" in out


def test_restore_to_a_folder_then_into_the_database_is_audited(
    archived: Path,
    demo_conn: psycopg.Connection[Any],
    keys: KeyPair,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subject = _archived_subject(demo_conn)
    out_dir = tmp_path / "restored"
    mirror = tmp_path / "audit.jsonl"
    monkeypatch.setenv("RETENTION_AUDIT_LOG", str(mirror))
    args = ["archive", "restore", "--subject", subject, "--identity", str(keys.file)]
    assert main([*args, "--to", str(out_dir)]) == 0
    patients = (out_dir / "public.patients.csv").read_text(encoding="utf-8")
    assert len(list(csv.reader(io.StringIO(patients, newline="")))) == 2  # header and the row
    assert oct((out_dir / "public.patients.csv").stat().st_mode & 0o777) == "0o600"
    assert main([*args, "--into-database"]) == 0
    out = capsys.readouterr().out
    assert "into the database" in out and "hold add" in out
    assert demo_conn.execute(
        "SELECT count(*) FROM patients WHERE patient_id = %s", (int(subject),)
    ).fetchone() == (1,)
    outcomes = [
        r[0]
        for r in demo_conn.execute(
            "SELECT outcome FROM retention.audit WHERE event = 'archive_restored' ORDER BY seq"
        )
    ]
    assert outcomes == ["exported", "restored"]
    restored = demo_conn.execute(
        "SELECT seq, hash FROM retention.audit WHERE event = 'archive_restored' ORDER BY seq"
    ).fetchall()
    assert [(a.seq, a.hash) for a in read_copy(mirror).anchors] == [tuple(r) for r in restored]
    assert main([*args, "--into-database"]) == 6  # already there: refused, nothing changed
    assert "already in the database" in capsys.readouterr().err


def test_restore_with_a_wrong_key_or_an_unknown_subject_fails_clearly(
    archived: Path, demo_conn: psycopg.Connection[Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    other = key_pair(tmp_path / "other", "other")
    subject = _archived_subject(demo_conn)
    base = ["archive", "restore", "--into-database", "--identity"]
    assert main([*base, str(other.file), "--subject", subject]) == 2
    err = capsys.readouterr().err
    assert "no given identity decrypts" in err and "AGE-SECRET" not in err
    assert main([*base, str(other.file), "--subject", "999999"]) == 6
    assert "no live archive holds this subject" in capsys.readouterr().err
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    assert main([*base, str(bad), "--subject", subject]) == 2
    assert "not an age X25519 private key" in capsys.readouterr().err


def test_a_file_whose_batch_never_committed_is_discarded_and_audited(
    archived: Path, demo_conn: psycopg.Connection[Any], demo_db_url: str, keys: KeyPair,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    item = catalog.files(demo_conn, "retention")[0]
    # a copy under another file id: what a batch leaves when killed before its commit
    orphan = item.name.replace(item.file_id.hex, "0" * 31 + "1")
    shutil.copy(archived / item.name, archived / orphan)
    (archived / (orphan + ".tmp")).write_bytes(b"partial")
    assert main(["archive", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"PROBLEM {orphan}: not committed" in out
    policies = Path(str(archived.parent / "policies"))
    config = settings(demo_db_url, policies, archive_dir=archived,
                      archive_recipients=(keys.recipient,))  # fmt: skip
    run(demo_conn, config)
    assert not (archived / orphan).exists() and not (archived / (orphan + ".tmp")).exists()
    rows = demo_conn.execute(
        "SELECT outcome, subjects, detail->>'file' FROM retention.audit "
        "WHERE event = 'archive_reconciled' ORDER BY seq"
    ).fetchall()
    assert sorted(r[2] for r in rows) == sorted([orphan, orphan + ".tmp"])
    assert {r[0] for r in rows} == {"discarded"}
    assert max(r[1] for r in rows) == sum(s.subjects for s in item.segments)
    assert main(["archive", "verify"]) == 0
