"""The audit trail: append-only, hash-chained, verifiable, and searchable by keyed digest."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from loguru import logger
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from retention.audit.anchor import Anchor, append_head, read_copy, read_heads
from retention.audit.trail import entry_hash, stored_content, subject_digest, verify
from retention.engines import Connection, sql
from retention.keys import load_key
from tests.engine_helpers import AUDIT_KEY, ROOT, cli, cli_env, run, settings
from tests.fix_engines import EngineDB, json_value


@pytest.fixture
def audited(demo_conn: psycopg.Connection[Any], demo_db_url: str) -> psycopg.Connection[Any]:
    run(demo_conn, settings(demo_db_url, batch_size=30))
    entries = demo_conn.execute("SELECT count(*) FROM retention.audit").fetchone()
    assert entries is not None and entries[0] >= 8
    return demo_conn


@pytest.fixture
def trail_db(engine_demo: EngineDB) -> EngineDB:
    """The demo hospital after a run, on the test's engine: an audit trail of several entries."""
    run(engine_demo.conn, engine_demo.settings(batch_size=30))
    assert _entries(engine_demo) >= 8
    return engine_demo


def _entries(db: EngineDB) -> int:
    row = db.conn.execute(sql.SQL("SELECT count(*) FROM {}").format(db.tool("audit"))).fetchone()
    assert row is not None
    return int(row[0])


def _tamper(conn: psycopg.Connection[Any], *statements: str) -> None:
    """What a superuser could do behind the trigger's back."""
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)


def _bypass(db: EngineDB) -> None:
    """In the current transaction, what lets a superuser past the append-only triggers:
    PostgreSQL's replica role; on MariaDB, whose triggers cannot be disabled, dropping them."""
    if db.engine == "postgresql":
        db.conn.execute("SET LOCAL session_replication_role = replica")
        return
    triggers = db.conn.execute(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
        "WHERE EVENT_OBJECT_SCHEMA = %s AND EVENT_OBJECT_TABLE = 'audit'",
        (db.tool_schema,),
    ).fetchall()
    assert triggers, "the audit table has its append-only triggers"
    for (name,) in triggers:
        db.conn.execute(sql.SQL("DROP TRIGGER {}").format(sql.Identifier(db.tool_schema, name)))


def _forge(db: EngineDB, *statements: str, params: tuple[Any, ...] | None = None) -> None:
    """What a superuser could do behind the triggers' back: `statements` on the audit table,
    written `{}`."""
    with db.conn.transaction():
        _bypass(db)
        for statement in statements:
            db.conn.execute(sql.SQL(statement).format(db.tool("audit")), params)


def test_intact_trail_verifies(trail_db: EngineDB) -> None:
    result = verify(trail_db.conn, trail_db.tool_schema)
    assert result.intact
    assert result.checked == _entries(trail_db)


def test_update_and_delete_are_rejected_by_the_database(audited: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        audited.execute("UPDATE retention.audit SET outcome = 'x' WHERE seq = 3")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        audited.execute("DELETE FROM retention.audit WHERE seq = 3")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        audited.execute("TRUNCATE retention.audit")


def test_altered_entry_is_named(trail_db: EngineDB) -> None:
    _forge(trail_db, "UPDATE {} SET subjects = subjects - 1 WHERE seq = 4")
    result = verify(trail_db.conn, trail_db.tool_schema)
    assert (result.broken_seq, result.problem) == (4, "its content was altered")
    assert result.checked == 3


def test_removed_entry_is_named(trail_db: EngineDB) -> None:
    _forge(trail_db, "DELETE FROM {} WHERE seq = 4")
    result = verify(trail_db.conn, trail_db.tool_schema)
    assert result.broken_seq == 5
    assert result.problem == "entries 4..4 were removed"


def test_reordered_entries_are_named(trail_db: EngineDB) -> None:
    _forge(
        trail_db,
        "UPDATE {} SET seq = -1 WHERE seq = 4",
        "UPDATE {} SET seq = 4 WHERE seq = 5",
        "UPDATE {} SET seq = 5 WHERE seq = -1",
    )
    result = verify(trail_db.conn, trail_db.tool_schema)
    assert result.broken_seq == 4
    assert result.problem is not None and "does not follow" in result.problem


def test_inserted_entry_is_detected(audited: psycopg.Connection[Any]) -> None:
    """A forged entry chained to entry 3 fits the chain, but carries no signature; the entries
    it pushed down no longer follow."""
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
    assert (result.broken_seq, result.checked) == (4, 3)
    assert result.problem is not None and "it is not signed" in result.problem
    with audited.transaction():  # signed with a key of its own: the chain still breaks after it
        audited.execute("SET LOCAL session_replication_role = replica")
        audited.execute("UPDATE retention.audit SET sig_key = 'SHA256:x', signature = 'eA==' "
                        "WHERE seq = 4")  # fmt: skip
    result = verify(audited, "retention")
    assert result.broken_seq == 5
    assert result.checked == 4  # the forgery is well formed as a chain; what follows it is not


def _cli(db: EngineDB, *args: str) -> subprocess.CompletedProcess[str]:
    return db.cli(*args)


def test_find_tells_when_and_how_a_subject_was_purged(trail_db: EngineDB) -> None:
    found = trail_db.conn.execute(
        sql.SQL(
            "SELECT subject_digests FROM {} WHERE event = 'batch' "
            "AND policy = 'dossier-medical' AND subjects > 0 ORDER BY seq LIMIT 1"
        ).format(trail_db.tool("audit"))
    ).fetchone()
    assert found is not None
    purged = json_value(found[0])[0]
    key = next(
        k
        for k in range(1, 400)
        if subject_digest(load_key(SecretStr(AUDIT_KEY), "a"), "dossier-medical", k) == purged
    )
    result = _cli(
        trail_db,
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
    unknown = _cli(trail_db, "audit", "find", "--subject", "999999", "--policy", "dossier-medical")
    assert "no entry" in unknown.stdout
    # "no entry" means no entry: not a policy the trail never saw, nor another audit key
    misnamed = _cli(trail_db, "audit", "find", "--subject", str(key), "--policy", "nosuch")
    assert misnamed.returncode == 2
    assert "error: the trail holds no entry of a policy named 'nosuch'" in misnamed.stderr
    assert "dossier-medical" in misnamed.stderr  # the hint lists the policies
    other = trail_db.cli(
        "audit", "find", "--subject", str(key), "--policy", "dossier-medical",
        RETENTION_AUDIT_KEY="0f" * 32,
    )  # fmt: skip
    assert other.returncode == 2 and "is not the one the trail's digests were made with" in (
        other.stderr
    )


def test_verify_command_exit_codes(trail_db: EngineDB) -> None:
    assert _cli(trail_db, "audit", "verify").returncode == 0
    _forge(trail_db, "UPDATE {} SET outcome = 'ok' WHERE seq = 2")
    broken = _cli(trail_db, "audit", "verify")
    assert broken.returncode == 1
    assert "BROKEN at entry 2" in broken.stdout


def test_show_formats(trail_db: EngineDB) -> None:
    as_json = json.loads(_cli(trail_db, "audit", "show", "--format", "json").stdout)
    assert as_json[0]["event"] == "run_start"
    as_csv = _cli(
        trail_db, "audit", "show", "--format", "csv", "--policy", "journal-modifications"
    ).stdout.splitlines()
    assert as_csv[0].startswith("seq,recorded_at,event")
    assert len(as_csv) > 1 and all("journal-modifications" in line for line in as_csv[1:])
    # an auditor's finding: nothing at all was printed for a filter that found nothing
    later = _cli(trail_db, "audit", "show", "--since", "2999-01-01")
    assert later.stdout == "no entry (filtered by --since or --policy)\n"
    assert (
        json.loads(_cli(trail_db, "audit", "show", "--policy", "x", "--format", "json").stdout)
        == []
    )


def _rewrite_from(db: EngineDB, first: int) -> None:
    """What an account able to bypass the trigger could do: change entry `first` and recompute
    every hash after it, leaving a chain that is valid in itself."""
    conn = db.conn
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            sql.SQL("SELECT * FROM {} ORDER BY seq").format(db.tool("audit"))
        ).fetchall()
    prev = next(r["hash"] for r in rows if r["seq"] == first - 1)
    with conn.transaction():
        _bypass(db)
        for row in rows:
            if row["seq"] < first:
                continue
            content = stored_content(row)
            if row["seq"] == first:
                content["subjects"] = 0
            content["prev_hash"] = prev
            digest = entry_hash(prev, content)
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET subjects = %s, prev_hash = %s, hash = %s WHERE seq = %s"
                ).format(db.tool("audit")),
                (content["subjects"], prev, digest, row["seq"]),
            )
            prev = digest


def _heads(conn: Connection, path: Path, schema: str = "retention") -> list[Anchor]:
    heads = read_heads(path, conn.info.dbname, schema)
    assert heads is not None
    return heads.anchors


def _last_seq(db: EngineDB) -> int:
    row = db.conn.execute(sql.SQL("SELECT max(seq) FROM {}").format(db.tool("audit"))).fetchone()
    assert row is not None
    return int(row[0])


def test_the_head_file_shows_that_the_last_entries_were_removed_even_after_later_runs(
    engine_demo: EngineDB, tmp_path: Path
) -> None:
    db, demo_conn, tool = engine_demo, engine_demo.conn, engine_demo.tool_schema
    head = tmp_path / "audit-head.jsonl"
    config = db.settings(batch_size=30, audit_head_file=head)
    run(demo_conn, config)
    last = _last_seq(db)
    anchors = _heads(demo_conn, head, tool)
    assert [a.seq for a in anchors] == [last]
    assert verify(demo_conn, tool, anchors).intact
    _forge(db, "DELETE FROM {} WHERE seq >= %s", params=(last - 1,))
    assert verify(demo_conn, tool).intact  # a shorter chain is valid in itself
    result = verify(demo_conn, tool, _heads(demo_conn, head, tool))
    assert (result.broken_seq, result.anchored) == (last - 1, True)
    assert result.problem is not None
    assert f"entries {last - 1}..{last} at least were removed" in result.problem
    # the next run reuses the sequence numbers; the head file keeps what the first one saw
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR")
    try:
        run(demo_conn, config)
    finally:
        logger.remove(sink)
    assert any("no longer holds the last entry the head file records" in e for e in errors)
    anchors = _heads(demo_conn, head, tool)
    assert len(anchors) == 2
    again = verify(demo_conn, tool, anchors)
    assert again.broken_seq == 1 and again.problem is not None
    assert f"entry {last} differs from the one the head file {head}, line 1" in again.problem


def test_every_entry_is_mirrored_and_the_report_checks_the_head_file(
    engine_demo: EngineDB, tmp_path: Path
) -> None:
    db, demo_db_url, demo_conn = engine_demo, engine_demo.url, engine_demo.conn
    copy, head = tmp_path / "audit.jsonl", tmp_path / "head.jsonl"
    env = {"RETENTION_AUDIT_LOG": str(copy), "RETENTION_AUDIT_HEAD_FILE": str(head), **db.env()}

    def command_line(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "retention.cli.main", *args],
            env={**cli_env(demo_db_url), **env},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    subject = str(demo_conn.execute("SELECT min(patient_id) FROM patients").fetchone()[0])
    commands = [
        ("hold", "add", "--policy", "dossier-medical", "--subject", subject, "--reason", "r"),
        ("hold", "release", "--policy", "dossier-medical", "--subject", subject),
        ("run", "--yes", "--allow-large", "--reason", "test"),
    ]
    for command in commands:
        done = command_line(*command)
        assert done.returncode == 0, done.stderr
    rows = demo_conn.execute(
        sql.SQL("SELECT seq, hash FROM {} ORDER BY seq").format(db.tool("audit"))
    ).fetchall()
    assert [(a.seq, a.hash) for a in read_copy(copy).anchors] == [tuple(r) for r in rows]
    report = command_line("report", "--format", "json")
    assert json.loads(report.stdout)["history"]["audit"]["checked_against_head_file"] is True
    last = rows[-1][0]
    _forge(db, "DELETE FROM {} WHERE seq = %s", params=(last,))
    audit = json.loads(command_line("report", "--format", "json").stdout)
    assert audit["history"]["audit"]["intact"] is False
    assert audit["history"]["audit"]["broken_seq"] == last


def _run_cli(url: str, **env: str) -> None:
    """`retention run` in a subprocess, with the settings `env`."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "retention.cli.main",
            *("run", "--yes", "--allow-large"),
            *("--reason", "test"),
        ],
        env={**cli_env(url), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_a_copy_of_the_audit_log_shows_a_rewritten_chain(
    engine_demo: EngineDB, tmp_path: Path
) -> None:
    db, demo_db_url, demo_conn, tool = (
        engine_demo,
        engine_demo.url,
        engine_demo.conn,
        engine_demo.tool_schema,
    )
    copy = tmp_path / "audit.jsonl"
    head = tmp_path / "head.jsonl"
    _run_cli(
        demo_db_url,
        RETENTION_AUDIT_LOG=str(copy),
        RETENTION_AUDIT_HEAD_FILE=str(head),
        RETENTION_SCHEMA_NAME=tool,
    )
    entries = _entries(db)
    assert len(read_copy(copy).anchors) == entries  # every entry mirrored
    intact = db.cli("audit", "verify", "--against", str(copy), RETENTION_AUDIT_HEAD_FILE=str(head))
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert f"copy {copy}: {entries} entries" in intact.stdout
    assert f"head file {head}: 1 run(s), last entry {entries}" in intact.stdout
    _rewrite_from(db, 3)
    assert verify(demo_conn, tool).intact  # the chain alone cannot tell
    signed = db.cli("audit", "verify")  # the signatures can
    assert signed.returncode == 1
    assert "BROKEN at entry 3: its signature does not match" in signed.stdout
    # without the public keys, the copy and the head file tell too
    found = read_copy(copy, demo_conn.info.dbname, tool).anchors
    broken = verify(demo_conn, tool, found)
    assert (broken.broken_seq, broken.anchored) == (3, True) and broken.problem is not None
    assert broken.problem.startswith("entry 3 differs from the one")
    assert "an entry in 3..3 was changed" in broken.problem
    assert f"entries 1..2 match {copy}, line 2" in broken.problem
    # the head file alone sees it too, less precisely: its entry is the last
    by_head = verify(demo_conn, tool, _heads(demo_conn, head, tool))
    assert by_head.problem is not None
    assert f"an entry in 1..{entries} was changed" in by_head.problem


def test_head_lines_of_another_database_are_skipped(
    audited: psycopg.Connection[Any], tmp_path: Path
) -> None:
    head = tmp_path / "head.jsonl"
    append_head(head, "another", "retention", 99, "ab" * 32)
    append_head(head, audited.info.dbname, "other_schema", 99, "ab" * 32)
    heads = read_heads(head, audited.info.dbname, "retention")
    assert heads is not None and (heads.anchors, heads.other) == ([], 2)
    last, digest = audited.execute(
        "SELECT seq, hash FROM retention.audit ORDER BY seq DESC LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    append_head(head, audited.info.dbname, "retention", last, digest)
    assert verify(audited, "retention", _heads(audited, head)).intact
    assert oct(head.stat().st_mode & 0o777) == "0o644"  # an auditor on the host can read it


def test_the_head_file_is_readable_by_auditors_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)  # the systemd units' UMask
    try:
        append_head(tmp_path / "head.jsonl", "db", "retention", 1, "ab" * 32)
    finally:
        os.umask(old)
    assert oct((tmp_path / "head.jsonl").stat().st_mode & 0o777) == "0o644"


def test_a_line_cut_short_is_skipped_and_the_next_one_stays_readable(tmp_path: Path) -> None:
    head = tmp_path / "head.jsonl"
    append_head(head, "db", "retention", 1, "ab" * 32)
    with head.open("a", encoding="utf-8") as out:  # what a full disk leaves
        out.write('{"database": "db", "fo')
    append_head(head, "db", "retention", 2, "cd" * 32)
    heads = read_heads(head, "db", "retention")
    assert heads is not None
    assert [a.seq for a in heads.anchors] == [1, 2] and heads.unreadable == 1
    assert "1 UNREADABLE line(s) skipped" in heads.describe()


def test_one_mirror_shared_by_two_trails_is_read_trail_by_trail(
    demo_db_url: str, demo_conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    copy = tmp_path / "audit.jsonl"
    for schema in ("retention", "retention_b"):
        # the second schema on purpose: a run never starts one beside the first (test_schema_name)
        assert cli(demo_db_url, "init", RETENTION_SCHEMA_NAME=schema).returncode == 0
        _run_cli(demo_db_url, RETENTION_AUDIT_LOG=str(copy), RETENTION_SCHEMA_NAME=schema)
    for schema in ("retention", "retention_b"):
        checked = cli(
            demo_db_url, "audit", "verify", "--against", str(copy), RETENTION_SCHEMA_NAME=schema
        )
        assert checked.returncode == 0, checked.stdout
        count = demo_conn.execute(f"SELECT count(*) FROM {schema}.audit").fetchone()[0]  # type: ignore[index]
        assert f"{count} entries, " in checked.stdout
        assert "line(s) of another database or schema skipped" in checked.stdout


def test_conflicting_records_of_one_entry_are_told_apart(
    audited: psycopg.Connection[Any],
) -> None:
    last, digest = audited.execute(
        "SELECT seq, hash FROM retention.audit ORDER BY seq DESC LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    anchors = [Anchor(1, "00" * 32, "copy A"), Anchor(last, digest, "copy B")]
    anchors.append(Anchor(last, "11" * 32, "copy C"))
    result = verify(audited, "retention", anchors)
    assert result.problem == (
        "entry 1 differs from the one copy A records: an entry in 1..1 was changed and the "
        "hashes after it recomputed"
    )
    result = verify(audited, "retention", anchors[1:])
    assert result.broken_seq == 1 and result.problem is not None
    assert result.problem.startswith(f"entry {last} differs from the one copy C records (copy B")


def test_journald_export_lines_are_read_and_other_lines_skipped(tmp_path: Path) -> None:
    entry = {"seq": 7, "hash": "ab" * 32, "prev_hash": "cd" * 32, "event": "run_end"}
    record = json.dumps({"text": "x", "record": {"message": "audit " + json.dumps(entry)}})
    lines = [
        json.dumps({"MESSAGE": record, "_SYSTEMD_UNIT": "retention.service"}),  # -o json
        record,  # -o cat, or the audit_log file
        "Started retention.service - data retention.",
        '{"record": {"message": "exposure snapshot 4 stored"}}',
        "",
    ]
    path = tmp_path / "journal.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    copy = read_copy(path)
    assert [(a.seq, a.hash) for a in copy.anchors] == [(7, "ab" * 32)] * 2
    assert copy.skipped == 2
    assert copy.anchors[0].source == f"{path}, line 1"


def test_unreadable_anchor_files_are_clear_errors(demo_db_url: str, tmp_path: Path) -> None:
    absent = cli(demo_db_url, "audit", "verify", "--head", str(tmp_path / "nope.jsonl"))
    assert absent.returncode == 2 and "no audit head file at" in absent.stderr
    missing = cli(demo_db_url, "audit", "verify", "--against", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert "cannot read the audit log copy" in missing.stderr
    folder = cli(demo_db_url, "audit", "verify", "--against", str(tmp_path))
    assert folder.returncode == 2 and "cannot read the audit log copy" in folder.stderr
    odd = tmp_path / "odd.jsonl"  # deep nesting, a line too long, bytes that are not UTF-8
    odd.write_bytes(b"[" * 200_000 + b"\n" + b"x" * 300_000 + b"\n" + b"caf\xe9\n")
    none = cli(demo_db_url, "audit", "verify", "--against", str(odd))
    assert none.returncode == 2 and "holds no audit entry" in none.stderr
    assert "Traceback" not in none.stderr
    piped = subprocess.run(
        [sys.executable, "-m", "retention.cli.main", "audit", "verify", "--against", "-"],
        input=b"caf\xe9\n" + b"[" * 200_000,
        check=False,
        env={**cli_env(demo_db_url), "PYTHONIOENCODING": "utf-8:strict"},
        capture_output=True,
        timeout=120,
    )
    assert piped.returncode == 2 and b"holds no audit entry" in piped.stderr
    not_a_folder = cli(demo_db_url, "audit", "verify", "--head", str(odd / "head.jsonl"))
    assert not_a_folder.returncode == 2 and "Traceback" not in not_a_folder.stderr


def test_the_head_file_can_be_piped(
    audited: psycopg.Connection[Any], demo_db_url: str, tmp_path: Path
) -> None:
    last, digest = audited.execute(
        "SELECT seq, hash FROM retention.audit ORDER BY seq DESC LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    head = tmp_path / "head.jsonl"
    append_head(head, audited.info.dbname, "retention", last, digest)
    _tamper(audited, f"DELETE FROM retention.audit WHERE seq = {last}")
    piped = subprocess.run(
        [sys.executable, "-m", "retention.cli.main", "audit", "verify", "--head", "-"],
        input=head.read_bytes(),
        env=cli_env(demo_db_url),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert piped.returncode == 1, piped.stdout
    assert b"at least were removed" in piped.stdout


def test_a_copy_restored_under_another_name_is_checked_against_the_original_trail(
    audited: psycopg.Connection[Any], demo_db_url: str, tmp_path: Path
) -> None:
    """An auditor's finding: a copy restored under another name (as the README suggests)
    skipped every head line, the original database's, in a note, and verify said intact after
    the last entries were deleted. A head file given by hand that names no line of the trail is
    an error naming the trails it holds; --trail names the original."""
    head = tmp_path / "head.jsonl"
    last, digest = audited.execute(
        "SELECT seq, hash FROM retention.audit ORDER BY seq DESC LIMIT 1"
    ).fetchone()  # type: ignore[misc]
    append_head(head, "hopital", "retention", last, digest)
    refused = cli(demo_db_url, "audit", "verify", "--head", str(head))
    assert refused.returncode == 2, refused.stdout
    assert "error: the head file " in refused.stderr
    assert f"holds no line of the trail {audited.info.dbname}.retention" in refused.stderr
    assert "hint: it names hopital.retention: checking a copy restored under another name" in (
        refused.stderr
    )
    ok = cli(demo_db_url, "audit", "verify", "--head", str(head), "--trail", "hopital")
    assert ok.returncode == 0 and f"head file {head}: 1 run(s), last entry {last}" in ok.stdout
    audited.execute("ALTER TABLE retention.audit DISABLE TRIGGER USER")
    audited.execute("DELETE FROM retention.audit WHERE seq = %s", (last,))
    audited.execute("ALTER TABLE retention.audit ENABLE TRIGGER USER")
    broken = cli(demo_db_url, "audit", "verify", "--head", str(head), "--trail", "hopital")
    assert broken.returncode == 1 and f"entries {last}..{last} at least were removed" in (
        broken.stdout
    )
