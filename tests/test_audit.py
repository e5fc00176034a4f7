"""The audit trail: append-only, hash-chained, verifiable, and searchable by keyed digest."""

from __future__ import annotations

import hashlib
import json
import subprocess
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from retention.audit.trail import entry_hash, stored_content, subject_digest, verify
from retention.keys import load_key
from tests.engine_helpers import AUDIT_KEY, ROOT, cli, run, settings


@pytest.fixture
def audited(demo_conn: psycopg.Connection[Any], demo_db_url: str) -> psycopg.Connection[Any]:
    run(demo_conn, settings(demo_db_url, batch_size=30))
    entries = demo_conn.execute("SELECT count(*) FROM retention.audit").fetchone()
    assert entries is not None and entries[0] >= 8
    return demo_conn


def _tamper(conn: psycopg.Connection[Any], *statements: str) -> None:
    """What a superuser could do behind the trigger's back."""
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)


def test_intact_trail_verifies(audited: psycopg.Connection[Any]) -> None:
    result = verify(audited, "retention")
    assert result.intact
    assert result.checked == audited.execute("SELECT count(*) FROM retention.audit").fetchone()[0]  # type: ignore[index]


def test_update_and_delete_are_rejected_by_the_database(audited: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        audited.execute("UPDATE retention.audit SET outcome = 'x' WHERE seq = 3")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        audited.execute("DELETE FROM retention.audit WHERE seq = 3")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        audited.execute("TRUNCATE retention.audit")


def test_altered_entry_is_named(audited: psycopg.Connection[Any]) -> None:
    _tamper(audited, "UPDATE retention.audit SET subjects = subjects - 1 WHERE seq = 4")
    result = verify(audited, "retention")
    assert (result.broken_seq, result.problem) == (4, "its content was altered")
    assert result.checked == 3


def test_removed_entry_is_named(audited: psycopg.Connection[Any]) -> None:
    _tamper(audited, "DELETE FROM retention.audit WHERE seq = 4")
    result = verify(audited, "retention")
    assert result.broken_seq == 5
    assert result.problem == "entries 4..4 were removed"


def test_reordered_entries_are_named(audited: psycopg.Connection[Any]) -> None:
    _tamper(
        audited,
        "UPDATE retention.audit SET seq = -1 WHERE seq = 4",
        "UPDATE retention.audit SET seq = 4 WHERE seq = 5",
        "UPDATE retention.audit SET seq = 5 WHERE seq = -1",
    )
    result = verify(audited, "retention")
    assert result.broken_seq == 4
    assert result.problem is not None and "does not follow" in result.problem


def test_inserted_entry_is_detected_right_after_it(audited: psycopg.Connection[Any]) -> None:
    """A forged entry chained to entry 3 fits; the entries it pushed down no longer do."""
    with audited.cursor(row_factory=dict_row) as cur:
        third = cur.execute("SELECT * FROM retention.audit WHERE seq = 3").fetchone()
    assert third is not None
    forged = stored_content(third)
    forged.update(
        seq=4, prev_hash=third["hash"], subjects=0, subject_digests=[], rows={}, outcome="done"
    )
    _tamper(
        audited,
        "UPDATE retention.audit SET seq = seq + 1000 WHERE seq > 3",
        "UPDATE retention.audit SET seq = seq - 999 WHERE seq > 1000",
    )
    with audited.transaction():
        audited.execute("SET LOCAL session_replication_role = replica")
        audited.execute(
            "INSERT INTO retention.audit (seq, recorded_at, run_id, event, policy, policy_sha256, "
            "phase, action, rows, subjects, subject_digests, key_id, actor, outcome, detail, "
            "prev_hash, hash) VALUES (%(seq)s, %(recorded_at)s, %(run_id)s, %(event)s, %(policy)s, "
            "%(policy_sha256)s, %(phase)s, %(action)s, %(rows)s, %(subjects)s, "
            "%(subject_digests)s, %(key_id)s, %(actor)s, %(outcome)s, %(detail)s, %(prev_hash)s, "
            "%(hash)s)",
            {
                **forged,
                "rows": Jsonb(forged["rows"]),
                "actor": Jsonb(forged["actor"]),
                "detail": Jsonb(forged["detail"]),
                "hash": entry_hash(third["hash"], forged),
            },
        )
    result = verify(audited, "retention")
    assert result.broken_seq == 5
    assert result.checked == 4  # the forgery itself is well formed; what follows it is not


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return cli(url, *args)


def test_find_tells_when_and_how_a_subject_was_purged(
    audited: psycopg.Connection[Any], demo_db_url: str
) -> None:
    purged = audited.execute(
        "SELECT subject_digests[1] FROM retention.audit WHERE event = 'batch' "
        "AND policy = 'dossier-medical' AND subjects > 0 ORDER BY seq LIMIT 1"
    ).fetchone()
    assert purged is not None
    key = next(
        k
        for k in range(1, 400)
        if subject_digest(load_key(SecretStr(AUDIT_KEY), "a"), "dossier-medical", k) == purged[0]
    )
    result = _cli(
        demo_db_url,
        "audit",
        "find",
        "--subject",
        str(key),
        "--policy",
        "dossier-medical",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [e["event"] for e in entries] == ["batch"]
    assert entries[0]["action"] == "purge" and entries[0]["phase"] == "destruction"
    sha = hashlib.sha256((ROOT / "policies" / "dossier-medical.yaml").read_bytes()).hexdigest()
    assert entries[0]["policy_sha256"] == sha
    unknown = _cli(
        demo_db_url, "audit", "find", "--subject", "999999", "--policy", "dossier-medical"
    )
    assert "no entry" in unknown.stdout


def test_verify_command_exit_codes(audited: psycopg.Connection[Any], demo_db_url: str) -> None:
    assert _cli(demo_db_url, "audit", "verify").returncode == 0
    _tamper(audited, "UPDATE retention.audit SET outcome = 'ok' WHERE seq = 2")
    broken = _cli(demo_db_url, "audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN at entry 2" in broken.stdout


def test_show_formats(audited: psycopg.Connection[Any], demo_db_url: str) -> None:
    as_json = json.loads(_cli(demo_db_url, "audit", "show", "--format", "json").stdout)
    assert as_json[0]["event"] == "run_start"
    as_csv = _cli(
        demo_db_url, "audit", "show", "--format", "csv", "--policy", "journal-modifications"
    ).stdout.splitlines()
    assert as_csv[0].startswith("seq,recorded_at,event")
    assert len(as_csv) > 1 and all("journal-modifications" in line for line in as_csv[1:])
