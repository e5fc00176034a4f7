"""Purge and archive phases run only with valid signatures of the exact policy file by enough
distinct approvers in the required roles; every other approval counts for nothing, by name."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from retention.audit.approvals import approval_state, record_approval, rules_of
from retention.audit.trail import GENESIS, Entry, entry_hash
from retention.store.schema import migrate
from tests.engine_helpers import ROOT, cli, run, settings, trail
from tests.fix_engines import EngineDB
from tests.key_helpers import (
    approver_key,
    ed25519_key,
    openssh_private,
    openssh_public,
    signature,
)

RECORD = "dossier-medical"
ROLE_ENV = {
    "RETENTION_REQUIRED_APPROVALS": "2",
    "RETENTION_REQUIRED_ROLES": "directeur,medecin-dim",
}


def _cli(
    db: EngineDB | str, policies: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`retention ARGS` on the test's database (a PostgreSQL URL: the tool's default schema)."""
    url, own = (db, {}) if isinstance(db, str) else (db.url, db.env())
    return cli(url, *args, policies=policies, timeout=300, **{**ROLE_ENV, **own, **env})


def _sha(policies: Path) -> str:
    import hashlib

    return hashlib.sha256((policies / f"{RECORD}.yaml").read_bytes()).hexdigest()


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", folder)
    return folder


def test_purge_waits_for_the_signatures_of_the_director_and_the_dim_physician(
    engine_demo: EngineDB, policies: Path, tmp_path: Path
) -> None:
    db = engine_demo
    config = db.settings(
        policies, required_approvals=2, required_roles=("directeur", "medecin-dim")
    )
    before = db.count("patients")
    report = run(db.conn, config, only=RECORD)
    assert report.phases[0].not_approved is not None
    assert "NOT approved: 0/2" in report.phases[0].not_approved
    sha = _sha(policies)
    # detached signatures made on the approvers' own machines, recorded here
    for who in ("dr.martin", "dr.martin", "dr.petit"):
        sig = tmp_path / f"{who}.sig"
        sig.write_text(signature(who, RECORD, sha), encoding="ascii")
        done = _cli(db, policies, "approve", "--policy", RECORD, "--signature", str(sig))
        assert done.returncode == 0, done.stderr
    plan = json.loads(_cli(db, policies, "plan", "--format", "json").stdout)
    state = next(p for p in plan["policies"] if p["name"] == RECORD)["approval"]
    assert state["approved"] is False and state["missing_roles"] == ["directeur"]
    assert [a["name"] for a in state["by"]] == ["dr.martin", "dr.petit"]
    assert state["not_counted"][0]["problem"] == "a repeated signature by dr.martin (counted once)"
    # a dry run shows what the run would skip, as the plan does
    planned = _cli(db, policies, "plan", "--policy", RECORD).stdout
    line = next(line for line in planned.splitlines() if "NOT approved" in line)
    dry = _cli(db, policies, "run", "--dry-run", "--policy", RECORD)
    assert dry.returncode == 0, dry.stderr
    assert line in dry.stdout.splitlines()
    # the director signs here with ssh-keygen and a key file of their own
    key = tmp_path / "id_ed25519"
    key.write_text(openssh_private(approver_key("m.durand")), encoding="ascii")
    key.chmod(0o600)
    signed = _cli(db, policies, "approve", "--policy", RECORD, "--key", str(key))
    assert signed.returncode == 0, signed.stderr
    assert "approved: 3/2 valid signature(s) of this version" in signed.stdout
    assert "m.durand (directeur)" in signed.stdout
    check = _cli(db, policies, "check")
    assert "approved: 3/2" in check.stdout
    report = run(db.conn, config, only=RECORD)
    assert report.phases[0].not_approved is None and report.phases[0].acted > 0
    assert db.count("patients") < before


def test_editing_the_file_withdraws_the_signatures(engine_demo: EngineDB, policies: Path) -> None:
    demo_conn = engine_demo.conn
    config = engine_demo.settings(policies, required_approvals=2)
    migrate(demo_conn, engine_demo.tool_schema)
    old = _sha(policies)
    audit = trail(demo_conn, config)
    for who in ("dr.martin", "m.durand"):
        record_approval(demo_conn, audit, RECORD, old, who, "", signature(who, RECORD, old))
    path = policies / f"{RECORD}.yaml"
    path.write_text(path.read_text().replace("20 years", "21 years"))
    new = _sha(policies)
    # an old signature put under the new content's SHA-256 does not sign it
    record_approval(
        demo_conn, audit, RECORD, new, "dr.martin", "", signature("dr.martin", RECORD, old)
    )
    state = approval_state(demo_conn, engine_demo.tool_schema, RECORD, new, rules_of(config))
    assert not state.approved
    assert state.approvals[0].problem == (
        "the signature is not of this policy content (another version, or forged)"
    )
    report = run(demo_conn, config, only=RECORD)
    assert report.phases[0].not_approved is not None
    assert "dr.martin: the signature is not of this policy content" in report.phases[0].not_approved


def test_unknown_revoked_and_misused_keys_are_refused_by_name(
    engine_demo: EngineDB, policies: Path, tmp_path: Path
) -> None:
    db = engine_demo
    approvers = tmp_path / "allowed_signers"
    approvers.write_text(
        f"dr.martin {openssh_public(approver_key('dr.martin'))}\n"
        f'm.durand valid-before="20200101" {openssh_public(approver_key("m.durand"))}\n',
        encoding="ascii",
    )
    sha = _sha(policies)
    cases = {
        "m.durand": (signature("m.durand", RECORD, sha), "its key is no longer valid"),
        "dr.petit": (
            signature("dr.petit", RECORD, sha, ed25519_key("someone else")),
            "the signing key is listed under no approver",
        ),
    }
    for who, (text, said) in cases.items():
        sig = tmp_path / f"{who}.sig"
        sig.write_text(text, encoding="ascii")
        done = _cli(
            db, policies, "approve", "--policy", RECORD, "--signature", str(sig),
            RETENTION_APPROVERS_FILE=str(approvers),
        )  # fmt: skip
        assert done.returncode == 2 and said in done.stderr, done.stderr
    # a key of another approver, named with --signer
    sig = tmp_path / "as-petit.sig"
    sig.write_text(signature("dr.martin", RECORD, sha), encoding="ascii")
    done = _cli(
        db, policies, "approve", "--policy", RECORD, "--signature", str(sig),
        "--signer", "dr.petit", RETENTION_APPROVERS_FILE=str(approvers),
    )  # fmt: skip
    assert done.returncode == 2 and "the key of another approver" in done.stderr
    # made for another purpose: ssh-keygen's namespace is part of what is signed
    message = tmp_path / "message.txt"
    message.write_bytes(
        _cli(db, policies, "approve", "--policy", RECORD, "--print-message").stdout.encode()
    )
    key = tmp_path / "id"
    key.write_text(openssh_private(approver_key("dr.martin")), encoding="ascii")
    key.chmod(0o600)
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-n", "git", "-f", str(key), str(message)], check=True
    )
    done = _cli(
        db, policies, "approve", "--policy", RECORD,
        "--signature", f"{message}.sig", RETENTION_APPROVERS_FILE=str(approvers),
    )  # fmt: skip
    assert done.returncode == 2 and "made for another purpose (namespace 'git')" in done.stderr


def test_free_text_approvals_of_earlier_versions_are_kept_and_enable_nothing(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, policies: Path
) -> None:
    """A trail written before signatures: its approvals read as unsigned, the chain verifies.
    (PostgreSQL only: trails from before signing exist there alone, MariaDB came later.)"""
    migrate(demo_conn)
    sha, prev = _sha(policies), GENESIS
    for seq, by in enumerate(("Dr Martin", "M. Durand"), start=1):
        content = {
            "seq": seq, "recorded_at": f"2025-01-0{seq}T10:00:00+00:00", "run_id": None,
            "event": "approval", "policy": RECORD, "policy_sha256": sha, "phase": None,
            "action": None, "rows": {}, "subjects": 0, "subject_digests": [], "key_id": None,
            "actor": {"db_user": "postgres"}, "outcome": "approved",
            "detail": {"by": by, "role": "directeur"}, "prev_hash": prev,
        }  # fmt: skip
        prev = entry_hash(prev, content)
        demo_conn.execute(
            "INSERT INTO retention.audit (seq, recorded_at, event, policy, policy_sha256, actor, "
            "outcome, detail, prev_hash, hash) VALUES (%s, %s, 'approval', %s, %s, %s, "
            "'approved', %s, %s, %s)",
            (seq, content["recorded_at"], RECORD, sha, Jsonb(content["actor"]),
             Jsonb(content["detail"]), content["prev_hash"], prev),
        )  # fmt: skip
    report = run(demo_conn, settings(demo_db_url, policies, required_approvals=2), only=RECORD)
    assert report.phases[0].not_approved is not None
    assert "Dr Martin: unsigned; M. Durand: unsigned" in report.phases[0].not_approved
    verified = _cli(demo_db_url, policies, "audit", "verify")
    assert verified.returncode == 0, verified.stdout
    assert "entries 1..2 were written before signing began" in verified.stdout
    assert "2 unsigned from before signatures (they enable nothing)" in verified.stdout
    shown = json.loads(_cli(demo_db_url, policies, "report", "--format", "json").stdout)
    version = next(
        v for v in shown["history"]["policy_versions"] if v["policy"] == RECORD and v["current"]
    )
    assert [(a["by"], a["problem"]) for a in version["approvals"]] == [
        ("Dr Martin", "unsigned"),
        ("M. Durand", "unsigned"),
    ]
    # signatures recorded since count: the chain leading to them starts with the unsigned
    # entries written before signing began, which link them in as verify accepts them
    for who in ("dr.martin", "m.durand"):
        sig = policies.parent / f"{who}.sig"
        sig.write_text(signature(who, RECORD, sha), encoding="ascii")
        done = _cli(demo_db_url, policies, "approve", "--policy", RECORD, "--signature", str(sig))
        assert done.returncode == 0, done.stderr
    checked = _cli(demo_db_url, policies, "check")
    assert "approved: 2/2" in checked.stdout, checked.stdout


def test_column_phases_need_no_approval(engine_demo: EngineDB) -> None:
    config = engine_demo.settings(required_approvals=2)
    report = run(engine_demo.conn, config, only="contacts-patients")
    assert report.phases[0].not_approved is None and report.phases[0].acted > 0


def test_one_key_listed_under_two_principals_counts_once(
    engine_demo: EngineDB, policies: Path, tmp_path: Path
) -> None:
    demo_conn = engine_demo.conn
    # one person holding the key of two principals (or a wildcard line) is one signer
    approvers = tmp_path / "allowed_signers"
    approvers.write_text(
        f"m.durand,dr.martin {openssh_public(approver_key('m.durand'))}\n"
        f"* {openssh_public(approver_key('dr.petit'))}\n",
        encoding="ascii",
    )
    config = engine_demo.settings(
        policies,
        required_approvals=2,
        required_roles=("directeur", "medecin-dim"),
        approvers_file=approvers,
    )
    migrate(demo_conn, engine_demo.tool_schema)
    sha = _sha(policies)
    audit = trail(demo_conn, config)
    for who, key in (("m.durand", "m.durand"), ("dr.martin", "m.durand")):
        record_approval(demo_conn, audit, RECORD, sha, who, "", signature(key, RECORD, sha))
    for who in ("dr.petit", "someone"):
        record_approval(demo_conn, audit, RECORD, sha, who, "", signature("dr.petit", RECORD, sha))
    state = approval_state(demo_conn, engine_demo.tool_schema, RECORD, sha, rules_of(config))
    assert [a.by for a in state.counted] == ["m.durand", "dr.petit"]
    assert state.approvals[1].problem is not None
    assert "already counted under m.durand" in state.approvals[1].problem
    assert "already counted under dr.petit" in str(state.approvals[3].problem)


def test_approvals_copied_from_another_trail_signed_with_the_same_key_count_for_nothing(
    demo_conn: psycopg.Connection[Any], demo_db_url: str, db_url: str, policies: Path,
    tmp_path: Path,
) -> None:  # fmt: skip
    """An auditor's finding: a staging database sharing the production trail's signing key
    (and approvers) got the two approvals of a changed policy; its two audit rows, copied
    unchanged into production, made check, plan and run count them (each verifies in itself).
    They do not follow production's entries: counted for nothing, and verify says so."""
    prod = settings(
        demo_db_url, policies, required_approvals=2, required_roles=("directeur", "medecin-dim")
    )
    stage = settings(db_url, policies)
    assert _cli(db_url, policies, "init").returncode == 0
    assert _cli(demo_db_url, policies, "init").returncode == 0
    run(demo_conn, settings(demo_db_url, policies), only="contacts-patients")  # a trail
    with psycopg.connect(db_url, autocommit=True) as staging:
        last = demo_conn.execute("SELECT coalesce(max(seq), 0) FROM retention.audit").fetchone()
        assert last is not None
        padding = trail(staging, stage)
        while True:  # the staging trail as long as production's, as a copy of it would be
            row = staging.execute("SELECT coalesce(max(seq), 0) FROM retention.audit").fetchone()
            assert row is not None
            if row[0] >= last[0]:
                break
            padding.append(staging, Entry(event="note", outcome="ok"))
        sha = _sha(policies)
        for who in ("dr.martin", "m.durand"):
            sig = tmp_path / f"{who}.sig"
            sig.write_text(signature(who, RECORD, sha), encoding="ascii")
            done = _cli(db_url, policies, "approve", "--policy", RECORD, "--signature", str(sig))
            assert done.returncode == 0, done.stderr
        copied = staging.execute(
            "SELECT * FROM retention.audit WHERE event = 'approval' ORDER BY seq"
        ).fetchall()
        columns = [
            c.name
            for c in staging.execute("SELECT * FROM retention.audit LIMIT 0").description or ()
        ]
    assert last[0] > 0 and [r[0] for r in copied] == [last[0] + 1, last[0] + 2]
    assert approval_state(demo_conn, "retention", RECORD, sha, rules_of(prod)).approvals == ()
    demo_conn.execute("ALTER TABLE retention.audit DISABLE TRIGGER USER")
    for row in copied:  # unchanged, as the superuser copied them
        demo_conn.execute(
            f"INSERT INTO retention.audit ({', '.join(columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})",
            [Jsonb(v) if isinstance(v, dict) else v for v in row],
        )
    demo_conn.execute("ALTER TABLE retention.audit ENABLE TRIGGER USER")
    state = approval_state(demo_conn, "retention", RECORD, sha, rules_of(prod))
    assert state.approved is False
    assert all(
        a.problem is not None and "its audit entry is not linked into this trail" in a.problem
        for a in state.approvals
    ), state.approvals
    checked = _cli(demo_db_url, policies, "check", RETENTION_REQUIRED_APPROVALS="2")
    assert "NOT approved: 0/2" in checked.stdout, checked.stdout
    verified = _cli(demo_db_url, policies, "audit", "verify")
    assert verified.returncode == 1
    assert "approvals: 0 signature(s) verify" in verified.stdout
    assert f"FORGED approval at entry {last[0] + 1}: 'dr.martin'" in verified.stdout
