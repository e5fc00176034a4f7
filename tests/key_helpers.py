"""Keys of the tests, derived from fixed seeds: no private key file in the repository.

The trail's signing key, and approvers whose public keys are in tests/data/allowed_signers
(written by `write_allowed_signers`, kept in the repository so that settings can name it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from retention.audit.approvals import NAMESPACE, message
from retention.audit.sshsig import sign_ed25519

ROOT = Path(__file__).resolve().parent.parent
APPROVERS_FILE = ROOT / "tests" / "data" / "allowed_signers"
ROLES = {"dr.martin": "medecin-dim", "m.durand": "directeur", "dr.petit": "medecin-dim"}


def ed25519_key(seed: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())


def openssh_private(key: ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()).decode()


def openssh_public(key: ed25519.Ed25519PrivateKey, comment: str = "") -> str:
    line = key.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode()
    return f"{line} {comment}".strip()


TRAIL_KEY = ed25519_key("retention tests: trail key 1")
AUDIT_SIGNING_KEY = openssh_private(TRAIL_KEY)


def approver_key(name: str) -> ed25519.Ed25519PrivateKey:
    return ed25519_key(f"retention tests: approver {name}")


def signature(
    name: str, policy: str, sha256: str, key: ed25519.Ed25519PrivateKey | None = None
) -> str:
    """`name`'s approval of (policy, sha256), as ssh-keygen -Y sign writes it."""
    return sign_ed25519(key or approver_key(name), NAMESPACE, message(policy, sha256))


def allowed_signers_text() -> str:
    return "".join(
        f'{name} namespaces="{NAMESPACE}" {openssh_public(approver_key(name))}\n' for name in ROLES
    )


if __name__ == "__main__":  # python -m tests.key_helpers: rewrite tests/data/allowed_signers
    APPROVERS_FILE.write_text(allowed_signers_text(), encoding="ascii")
