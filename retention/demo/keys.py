"""The demo's keys, made on first use in the demo's folder (`.retention-demo/keys`): the audit
and pseudonymisation secrets, the trail's signing key (an OpenSSH Ed25519 key and its .pub
line), and two approvers, a DIM physician and the director, each with an OpenSSH key and a line
in an allowed_signers file. Real approvers keep their keys on their own machines; the demo signs
for them in this process."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_ssh_private_key,
)
from pydantic import SecretStr

from retention.audit.approvals import NAMESPACE, message, record_approval
from retention.audit.sshsig import sign_ed25519
from retention.audit.trail import AuditTrail
from retention.engines import Connection
from retention.settings import Settings

APPROVERS = (("dr.demo", "medecin-dim"), ("direction.demo", "directeur"))  # R1112-7


@dataclass(frozen=True)
class DemoKeys:
    """The files `make_keys` wrote."""

    signing_key: Path
    public_keys: Path
    approvers_file: Path
    approver_keys: dict[str, Path]  # principal -> private key file

    @property
    def roles(self) -> dict[str, str]:
        return dict(APPROVERS)


def make_keys(folder: Path) -> DemoKeys:
    """The trail's signing key and the approvers' keys, made once in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    signing = _ssh_key(folder / "audit-signing-key", "retention-audit")
    keys = {p: _ssh_key(folder / f"approver-{p}", p) for p, _ in APPROVERS}
    allowed = folder / "allowed_signers"
    allowed.write_text(
        "".join(
            f'{p} namespaces="{NAMESPACE}" {_pub(key).read_text().strip()}\n'
            for p, key in keys.items()
        ),
        encoding="ascii",
    )
    return DemoKeys(signing, _pub(signing), allowed, keys)


def demo_keys(settings: Settings, folder: Path) -> Settings:
    """The configured keys, else the demo's own (made once, kept in `folder`)."""
    made = make_keys(folder)
    update: dict[str, Any] = {}
    for name in ("audit_key", "pseudonym_key"):
        if getattr(settings, name) is None:
            path = _made(folder / name, lambda: secrets.token_hex(32))
            update[name] = SecretStr(path.read_text(encoding="ascii").strip())
    if settings.audit_signing_key is None:
        update["audit_signing_key"] = SecretStr(made.signing_key.read_text(encoding="ascii"))
        update["audit_public_keys"] = made.public_keys
    if settings.approvers_file is None:
        update["approvers_file"] = made.approvers_file
        update["approver_roles"] = made.roles
        update["required_roles"] = tuple(role for _, role in APPROVERS)
    return settings.model_copy(update=update)


def sign_as_demo_approvers(
    conn: Connection,
    audit: AuditTrail,
    folder: Path,
    policy: str,
    sha256: str,
    roles: dict[str, str],
) -> None:
    """Both demo approvers sign (policy, sha256), as `retention approve --key` would."""
    for principal, role in APPROVERS:
        key = load_ssh_private_key((folder / f"approver-{principal}").read_bytes(), None)
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        signature = sign_ed25519(key, NAMESPACE, message(policy, sha256))
        record_approval(
            conn, audit, policy, sha256, principal, roles.get(principal, role), signature
        )


def _made(path: Path, make: Any) -> Path:
    if not path.exists():
        path.write_text(make(), encoding="ascii")
        path.chmod(0o600)
    return path


def _ssh_key(path: Path, comment: str) -> Path:
    """An OpenSSH Ed25519 key pair as `ssh-keygen -t ed25519 -N ''` writes it."""
    if not path.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))
        path.chmod(0o600)
        public = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
        _pub(path).write_text(f"{public.decode()} {comment}\n", encoding="ascii")
    return path


def _pub(path: Path) -> Path:
    return path.parent / f"{path.name}.pub"
