"""Signatures: OpenSSH's SSHSIG format read and written as ssh-keygen does, allowed_signers
files, and the trail's signing keys (rotation, retired keys, auditors with public keys only)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
from psycopg.rows import dict_row
from pydantic import SecretStr

from retention.audit.seal import CONTEXT, key_id_of, read_public_keys, signer_for
from retention.audit.sshsig import parse_signature, read_allowed_signers, sign_ed25519
from retention.audit.trail import entry_hash, stored_content, verify
from retention.engines import Connection, sql
from retention.errors import SettingsError, UsageError
from tests.engine_helpers import insert_audit_row, run
from tests.fix_engines import EngineDB
from tests.key_helpers import ed25519_key, openssh_private, openssh_public

MESSAGE = b"retention approval v1\npolicy: p\nsha256: 00\n"


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa", "rsa"])
def test_ssh_keygen_signatures_verify_here(tmp_path: Path, kind: str) -> None:
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True)
    (tmp_path / "m").write_bytes(MESSAGE)
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-n", "retention-approval", "-f", str(key),
         str(tmp_path / "m")], check=True,
    )  # fmt: skip
    parsed = parse_signature((tmp_path / "m.sig").read_text())
    assert parsed.problem("retention-approval", MESSAGE) is None
    assert parsed.problem("retention-approval", MESSAGE + b"x") == "the signature does not match"
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{key}.pub"], check=True, capture_output=True, text=True
    )
    assert parsed.fingerprint in listed.stdout


def test_signatures_made_here_verify_with_ssh_keygen(tmp_path: Path) -> None:
    key = ed25519_key("approver")
    (tmp_path / "sig").write_text(sign_ed25519(key, "retention-approval", MESSAGE))
    (tmp_path / "allowed").write_text(f"dr.x {openssh_public(key)}\n")
    done = subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", str(tmp_path / "allowed"), "-I", "dr.x",
         "-n", "retention-approval", "-s", str(tmp_path / "sig")],
        input=MESSAGE, capture_output=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert b'Good "retention-approval" signature for dr.x' in done.stdout


def test_allowed_signers_options_and_errors(tmp_path: Path) -> None:
    key = openssh_public(ed25519_key("a"))
    path = tmp_path / "allowed_signers"
    path.write_text(
        "# approvers\n"
        f'"dr.a,dr.b" namespaces="retention-approval,git",valid-after="20240101Z" {key} c\n'
    )
    (line,) = read_allowed_signers(path)
    assert line.principals == ("dr.a", "dr.b") and line.allows("retention-approval")
    assert line.valid_after is not None and line.valid_after.year == 2024
    path.write_text(f"x\ndr.a {key}\n")
    with pytest.raises(UsageError, match=r"allowed_signers, line 1: expected principals"):
        read_allowed_signers(path)
    path.write_text(f"dr.a cert-authority {key}\n")
    with pytest.raises(UsageError, match="cert-authority lines are not supported"):
        read_allowed_signers(path)


def _public_keys(path: Path, *seeds: str) -> Path:
    path.write_text("".join(f"{openssh_public(ed25519_key(s), s)}\n" for s in seeds))
    return path


def test_the_signing_key_must_be_the_newest_public_key(tmp_path: Path) -> None:
    keys = _public_keys(tmp_path / "pub", "k1", "k2")
    newest = SecretStr(openssh_private(ed25519_key("k2")))
    assert signer_for(keys, newest).id == key_id_of(ed25519_key("k2").public_key())
    with pytest.raises(SettingsError, match="is not the last key of"):
        signer_for(keys, SecretStr(openssh_private(ed25519_key("k1"))))
    with pytest.raises(SettingsError, match="audit_signing_key is not set"):
        signer_for(keys, None)
    with pytest.raises(SettingsError, match="not an unencrypted OpenSSH private key"):
        signer_for(None, SecretStr("b2" * 32))


def test_rotation_old_entries_verify_with_the_old_key_and_a_retired_key_cannot_append(
    engine_demo: EngineDB, tmp_path: Path
) -> None:
    demo_conn, tool = engine_demo.conn, engine_demo.tool_schema
    first, second = (SecretStr(openssh_private(ed25519_key(s))) for s in ("k1", "k2"))
    one = _public_keys(tmp_path / "one", "k1")
    run(demo_conn, engine_demo.settings(audit_signing_key=first, audit_public_keys=one),
        only="contacts-patients")  # fmt: skip
    both = _public_keys(tmp_path / "both", "k1", "k2")  # the rotation: the new key appended
    run(demo_conn, engine_demo.settings(audit_signing_key=second, audit_public_keys=both),
        only="contacts-patients")  # fmt: skip
    result = verify(demo_conn, tool, keys=read_public_keys(both))
    assert result.intact and result.signers == tuple(
        key_id_of(ed25519_key(s).public_key()) for s in ("k1", "k2")
    )
    assert not verify(demo_conn, tool, keys=read_public_keys(one)).intact
    # an auditor: the public keys, no signing key, a connection to (a copy of) the database
    audited = engine_demo.cli("audit", "verify", RETENTION_AUDIT_PUBLIC_KEYS=str(both),
                              RETENTION_AUDIT_SIGNING_KEY="")  # fmt: skip
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert f"signatures checked with the public keys file {both}" in audited.stdout
    # whoever stole the retired key appends an entry with it
    last = demo_conn.execute(
        sql.SQL("SELECT seq, hash FROM {} ORDER BY seq DESC LIMIT 1").format(
            engine_demo.tool("audit")
        )
    ).fetchone()
    assert last is not None
    _append_copy_signed(demo_conn, tool, int(last[0]), ed25519_key("k1"))
    stolen = verify(demo_conn, tool, keys=read_public_keys(both))
    assert stolen.broken_seq == last[0] + 1 and stolen.problem is not None
    assert stolen.problem.startswith("it is signed with the retired key")


def _append_copy_signed(conn: Connection, schema: str, seq: int, key: Any) -> None:
    """Entry `seq` again, chained after itself, its hash recomputed and signed with `key`."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            sql.SQL("SELECT * FROM {} WHERE seq = %s").format(sql.Identifier(schema, "audit")),
            (seq,),
        ).fetchone()
    assert row is not None
    content = stored_content(row)
    content.update(seq=seq + 1, prev_hash=row["hash"])
    digest = entry_hash(row["hash"], content)
    signed = base64.b64encode(key.sign(CONTEXT + digest.encode())).decode()
    insert_audit_row(
        conn,
        {**content, "recorded_at": row["recorded_at"], "hash": digest,
         "sig_key": key_id_of(key.public_key()), "signature": signed},
        schema,
    )  # fmt: skip


def test_commands_that_write_the_trail_refuse_to_start_without_a_usable_signing_key(
    engine_demo: EngineDB, tmp_path: Path
) -> None:
    cli = engine_demo.cli
    done = cli("run", "--yes", RETENTION_AUDIT_SIGNING_KEY="b2" * 32)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "audit_signing_key is not an unencrypted OpenSSH private key" in done.stderr
    older = _public_keys(tmp_path / "pub", "retention tests: trail key 1", "a newer key")
    done = cli("hold", "list", RETENTION_AUDIT_PUBLIC_KEYS=str(older))
    assert done.returncode == 0  # reading needs no signing key
    done = cli("run", "--yes", RETENTION_AUDIT_PUBLIC_KEYS=str(older))
    assert done.returncode == 2 and "is not the last key of" in done.stderr


def test_allowed_signers_patterns_match_as_openssh_matches_them(tmp_path: Path) -> None:
    # '!' denies (ssh-keygen: a negated match refuses the line), '[' is a plain character
    path = tmp_path / "allowed_signers"
    path.write_text(
        f'"!dr.petit,dr.*" namespaces="*,!retention-approval" {openssh_public(ed25519_key("a"))}\n'
        f"dr.[ab] {openssh_public(ed25519_key('b'))}\n"
    )
    negated, bracket = read_allowed_signers(path)
    assert negated.names("dr.martin") and not negated.names("dr.petit")
    assert not negated.names("!dr.petit")
    assert negated.allows("git") and not negated.allows("retention-approval")
    assert bracket.names("dr.[ab]") and not bracket.names("dr.a")


def test_a_signature_with_bytes_after_it_is_refused_as_ssh_keygen_refuses_it() -> None:
    # the same signature could otherwise be written in many ways (ssh-keygen: trailing data)
    good = parse_signature(sign_ed25519(ed25519_key("a"), "retention-approval", MESSAGE))
    assert good.problem("retention-approval", MESSAGE) is None
    padded = type(good)(good.public_key, good.namespace, good.hash_algorithm, good.signature + b"x")
    assert padded.problem("retention-approval", MESSAGE) == "trailing bytes after the signature"
