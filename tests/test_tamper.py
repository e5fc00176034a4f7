"""The tamper matrix: what the daemon's own role and a database superuser can do to the audit
trail and to approvals, and what `audit verify` says of it (exit 1, the entry named), or how
the database refuses it. A run never acts on a forged approval."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from retention.audit.trail import GENESIS, SIGNED_COLUMNS, entry_hash, stored_content
from retention.cli.main import main
from tests.engine_helpers import ROOT, cli_env, insert_audit_row, run, settings
from tests.key_helpers import ed25519_key, signature

POLICY = "journal-modifications"  # a purge: it needs approvals
_names = itertools.count()


@dataclass(frozen=True)
class Trail:
    url: str  # as the superuser
    role_url: str  # as the daemon's least-privilege role
    head: Path
    last: int  # the last entry's sequence number after the run


@pytest.fixture
def command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """`retention ARGS` in this process (the tests' settings; `env`: more): exit code, output."""

    def call(url: str, *args: str, **env: str) -> tuple[int, str]:
        for name in [k for k in os.environ if k.startswith("RETENTION_")]:
            monkeypatch.delenv(name)
        for name, value in cli_env(url, ROOT / "policies", **env).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    return call


@pytest.fixture
def trail(
    demo_conn: psycopg.Connection[Any],
    demo_db_url: str,
    tmp_path: Path,
    command: Callable[..., tuple[int, str]],
) -> Iterator[Trail]:
    """One run's trail, its head file, and a role with exactly `retention grants`' privileges."""
    head = tmp_path / "head.jsonl"
    # a policy of column actions: the purge of POLICY stays due, for the run below
    config = settings(demo_db_url, batch_size=50, audit_head_file=head)
    run(demo_conn, config, only="contacts-patients")
    role = f"rt_tamper_{os.getpid()}_{next(_names)}"
    code, granted = command(demo_db_url, "grants", "--role", role)
    assert code == 0, granted
    demo_conn.execute(granted)
    last = demo_conn.execute("SELECT max(seq) FROM retention.audit").fetchone()
    assert last is not None and last[0] >= 6
    yield Trail(demo_db_url, make_conninfo(demo_db_url, user=role), head, int(last[0]))
    demo_conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    demo_conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _rows(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            sql.SQL("SELECT {} FROM retention.audit ORDER BY seq").format(
                sql.SQL(", ").join(map(sql.Identifier, SIGNED_COLUMNS))
            )
        ).fetchall()


def _forged(after: dict[str, Any], **change: Any) -> dict[str, Any]:
    """An entry chained after `after`, its hash recomputed from the public source."""
    content = stored_content(after)
    now = datetime.now(UTC)
    content.update(
        seq=after["seq"] + 1,
        prev_hash=after["hash"],
        recorded_at=now.isoformat(),
        subject_digests=[],
        **change,
    )
    digest = entry_hash(after["hash"], content)
    return {**content, "recorded_at": now, "hash": digest, "sig_key": None, "signature": None}


def _own_key_signature(row: dict[str, Any]) -> dict[str, Any]:
    """A signature with a key of the attacker's own (the trail's key is not in the database)."""
    import base64

    from retention.audit.seal import CONTEXT, key_id_of

    key = ed25519_key("an attacker's key")
    signed = key.sign(CONTEXT + row["hash"].encode())
    return {
        **row,
        "sig_key": key_id_of(key.public_key()),
        "signature": base64.b64encode(signed).decode(),
    }


def _approval(
    last: dict[str, Any], by: str, sha256: str, signed: str | None, **detail_: Any
) -> dict[str, Any]:
    detail: Any = {"by": by, "role": "directeur"}
    if signed is not None:
        detail["signature"] = signed
    detail = detail_.get("detail", {**detail, **detail_})
    return _forged(
        last,
        event="approval",
        outcome="signed",
        policy=POLICY,
        policy_sha256=sha256,
        phase=None,
        action=None,
        rows={},
        subjects=0,
        detail=detail,
    )


def _sha256(conn: psycopg.Connection[Any]) -> str:
    return hashlib.sha256((ROOT / "policies" / f"{POLICY}.yaml").read_bytes()).hexdigest()


# --- the attacks: each gets a connection (the role's, or a superuser's with triggers off) ----


def edit(conn: psycopg.Connection[Any], t: Trail) -> None:
    conn.execute("UPDATE retention.audit SET subjects = subjects + 1 WHERE seq = 4")


def delete_middle(conn: psycopg.Connection[Any], t: Trail) -> None:
    conn.execute("DELETE FROM retention.audit WHERE seq = 4")


def delete_last(conn: psycopg.Connection[Any], t: Trail) -> None:
    conn.execute("DELETE FROM retention.audit WHERE seq > %s", (t.last - 3,))


def delete_all(conn: psycopg.Connection[Any], t: Trail) -> None:
    conn.execute("DELETE FROM retention.audit")


def truncate(conn: psycopg.Connection[Any], t: Trail) -> None:
    conn.execute("TRUNCATE retention.audit")


def reorder(conn: psycopg.Connection[Any], t: Trail) -> None:
    conn.execute("UPDATE retention.audit SET seq = -seq WHERE seq IN (4, 5)")
    conn.execute(
        "UPDATE retention.audit SET seq = CASE seq WHEN -4 THEN 5 ELSE 4 END WHERE seq < 0"
    )


def insert(conn: psycopg.Connection[Any], t: Trail) -> None:
    rows = _rows(conn)
    conn.execute("UPDATE retention.audit SET seq = seq + 1000 WHERE seq > 3")
    conn.execute("UPDATE retention.audit SET seq = seq - 999 WHERE seq > 1000")
    insert_audit_row(conn, _forged(rows[2], outcome="done"))


def forged_append(conn: psycopg.Connection[Any], t: Trail) -> None:
    insert_audit_row(conn, _forged(_rows(conn)[-1], event="run_end", outcome="completed"))


def forged_append_own_key(conn: psycopg.Connection[Any], t: Trail) -> None:
    insert_audit_row(conn, _own_key_signature(_forged(_rows(conn)[-1], event="run_end")))


def rewrite_from(conn: psycopg.Connection[Any], t: Trail) -> None:
    """Change entry 3, recompute every hash after it (a chain valid in itself)."""
    rows = _rows(conn)
    prev = rows[1]["hash"]
    for row in rows[2:]:
        content = stored_content(row)
        if row["seq"] == 3:
            content["subjects"] = 0
        content["prev_hash"] = prev
        prev = entry_hash(prev, content)
        conn.execute(
            "UPDATE retention.audit SET subjects = %s, prev_hash = %s, hash = %s WHERE seq = %s",
            (content["subjects"], content["prev_hash"], prev, row["seq"]),
        )


def rewrite_all_unsigned(conn: psycopg.Connection[Any], t: Trail) -> None:
    """Every entry rewritten without signatures, hashes recomputed: it looks like a trail
    written before signing began."""
    prev = GENESIS
    for row in _rows(conn):
        content = {**stored_content(row), "subjects": 0, "prev_hash": prev}
        prev = entry_hash(prev, content)
        conn.execute(
            "UPDATE retention.audit SET subjects = 0, prev_hash = %s, hash = %s, "
            "sig_key = NULL, signature = NULL WHERE seq = %s",
            (content["prev_hash"], prev, row["seq"]),
        )


def forged_approvals(conn: psycopg.Connection[Any], t: Trail) -> None:
    """Two free-text approvals, as `approve --by` wrote them, chained at the end."""
    sha = _sha256(conn)
    first = _approval(_rows(conn)[-1], "Forged One", sha, None)
    insert_audit_row(conn, first)
    insert_audit_row(conn, _approval(first, "Forged Two", sha, None))


def forged_signed_approvals(conn: psycopg.Connection[Any], t: Trail) -> None:
    """Approvals signed with keys the approvers file does not list, entries signed too."""
    sha = _sha256(conn)
    first = _approval(
        _rows(conn)[-1], "m.durand", sha, signature("x", POLICY, sha, ed25519_key("forger 1"))
    )
    insert_audit_row(conn, _own_key_signature(first))
    second = _approval(
        first, "dr.martin", sha, signature("x", POLICY, sha, ed25519_key("forger 2"))
    )
    insert_audit_row(conn, _own_key_signature(second))


def malformed_approvals(conn: psycopg.Connection[Any], t: Trail) -> None:
    """Approval entries whose detail is not what `approve` writes: a signature that is not
    text, a detail that is not an object."""
    first = _approval(_rows(conn)[-1], "m.durand", _sha256(conn), None, signature=123)
    insert_audit_row(conn, first)
    insert_audit_row(conn, _approval(first, "", _sha256(conn), None, detail=[]))


Attack = Callable[[psycopg.Connection[Any], Trail], None]
REFUSED = "refused"

# attack -> what `audit verify` prints (`{last}`: the last entry of the run)
MATRIX: dict[str, tuple[Attack, str]] = {
    "edit": (edit, "BROKEN at entry 4: its content was altered"),
    "delete in the middle": (delete_middle, "BROKEN at entry 5: entries 4..4 were removed"),
    "delete the last 3": (delete_last, "entries {first}..{last} at least were removed"),
    "delete all": (delete_all, "entries 1..{last} at least were removed"),
    "truncate": (truncate, "entries 1..{last} at least were removed"),
    "reorder": (reorder, "BROKEN at entry 4: it does not follow the previous entry"),
    "insert": (insert, "BROKEN at entry 4: it is not signed"),
    "forged append": (forged_append, "BROKEN at entry {next}: it is not signed"),
    "forged append, own key": (
        forged_append_own_key,
        "BROKEN at entry {next}: it is signed with an unknown key",
    ),
    "rewrite from an entry": (rewrite_from, "BROKEN at entry 3: its signature does not match"),
    "rewrite all, unsigned": (
        rewrite_all_unsigned,
        "BROKEN from entry 1: entry {last} differs from the one the head file",
    ),
    "forged approvals": (forged_approvals, "FORGED approval at entry {next}: 'Forged One'"),
    "forged signed approvals": (
        forged_signed_approvals,
        "FORGED approval at entry {next}: 'm.durand' for journal-modifications: signed with an "
        "unknown key",
    ),
    "malformed approvals": (
        malformed_approvals,
        "FORGED approval at entry {next}: 'm.durand' for journal-modifications: the signature "
        "is not text",
    ),
}
# what the daemon's role may do at all: INSERT into the trail, nothing else
ROLE_MAY = {
    "forged append",
    "forged append, own key",
    "forged approvals",
    "forged signed approvals",
    "malformed approvals",
}


@pytest.mark.parametrize("who", ["daemon role", "superuser"])
@pytest.mark.parametrize("attack", list(MATRIX))
def test_tampering_is_detected_and_named(
    trail: Trail, attack: str, who: str, command: Callable[..., tuple[int, str]]
) -> None:
    action, said = MATRIX[attack]
    url = trail.role_url if who == "daemon role" else trail.url
    with psycopg.connect(url, autocommit=True) as conn:
        if who == "daemon role" and attack not in ROLE_MAY:
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                action(conn, trail)
            code, out = command(
                trail.url, "audit", "verify", RETENTION_AUDIT_HEAD_FILE=str(trail.head)
            )
            assert code == 0, out
            return
        with conn.transaction():
            if who == "superuser":
                conn.execute("SET LOCAL session_replication_role = replica")  # triggers off
            action(conn, trail)
    code, out = command(trail.url, "audit", "verify", RETENTION_AUDIT_HEAD_FILE=str(trail.head))
    assert code == 1, out
    assert said.format(first=trail.last - 2, last=trail.last, next=trail.last + 1) in out, out


def test_a_trail_rewritten_whole_without_signatures_is_refused_from_audit_signed_from(
    trail: Trail, command: Callable[..., tuple[int, str]]
) -> None:
    """Without a record outside the database, an unsigned rewrite looks like a trail written
    before signing began; the setting audit_signed_from (outside the database) refuses it."""
    with psycopg.connect(trail.url, autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")  # triggers off
        rewrite_all_unsigned(conn, trail)
    code, out = command(trail.url, "audit", "verify")
    assert code == 0 and "set audit_signed_from" in out, out
    code, out = command(trail.url, "audit", "verify", RETENTION_AUDIT_SIGNED_FROM="1")
    assert code == 1, out
    assert "BROKEN at entry 1: it is not signed, and every entry from 1 on must be" in out, out


@pytest.mark.parametrize(
    "attack", ["forged approvals", "forged signed approvals", "malformed approvals"]
)
def test_a_run_refuses_to_act_on_forged_approvals(
    trail: Trail, demo_conn: psycopg.Connection[Any], attack: str
) -> None:
    with psycopg.connect(trail.role_url, autocommit=True) as conn:
        MATRIX[attack][0](conn, trail)
    before = demo_conn.execute("SELECT count(*) FROM user_log").fetchone()
    report = run(demo_conn, settings(trail.url, required_approvals=2), only=POLICY)
    phase = report.phases[0]
    assert phase.not_approved is not None and phase.acted == 0
    assert "NOT approved: 0/2" in phase.not_approved
    named = {
        "forged approvals": "Forged One: unsigned",
        "malformed approvals": "m.durand: the signature is not text",
    }.get(attack, "m.durand")
    assert named in phase.not_approved
    assert demo_conn.execute("SELECT count(*) FROM user_log").fetchone() == before


def test_the_cli_refuses_a_free_text_approval(
    trail: Trail, command: Callable[..., tuple[int, str]]
) -> None:
    for by in ("Forged One", "Forged Two"):
        code, out = command(trail.role_url, "approve", "--policy", POLICY, "--by", by)
        assert code == 2 and "--by and --role are gone" in out
    code, out = command(trail.url, "audit", "verify", RETENTION_AUDIT_HEAD_FILE=str(trail.head))
    assert code == 0 and "approvals: 0 signature(s)" in out
