"""Signatures of audit entries: a secret the database never sees.

The hash chain alone has no secret: whoever can write to the table can append an entry, or
rewrite the chain from any entry, with hashes recomputed from the source. So every entry's hash
is also signed with an Ed25519 key that lives on the daemon's host only (setting
`audit_signing_key`, an OpenSSH private key made by `ssh-keygen -t ed25519`), and the entry
records the key's fingerprint (`SHA256:...`, as `ssh-keygen -l` prints it). Auditors check the
signatures with the public keys alone (setting `audit_public_keys`: one OpenSSH line per key,
oldest first): they can verify, they cannot sign.

Rotation: a new key is appended to the public keys file and becomes the signing key; entries
signed before keep verifying with the old key, and an entry signed with an older key after a
newer one has signed is refused (a retired key, even stolen, cannot extend the trail).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import (
    load_ssh_private_key,
    load_ssh_public_key,
)
from pydantic import SecretStr

from retention.audit.sshsig import fingerprint, public_blob
from retention.errors import SettingsError

CONTEXT = b"retention-audit-v1\x00"  # what is signed: CONTEXT + the entry's hash (hex)
_KEYGEN = "ssh-keygen -t ed25519 -N '' -C retention-audit -f audit-signing-key"


@dataclass(frozen=True)
class TrailSigner:
    """The private key that signs entries, and its fingerprint."""

    key: ed25519.Ed25519PrivateKey
    id: str

    def sign(self, entry_hash: str) -> str:
        return base64.b64encode(self.key.sign(CONTEXT + entry_hash.encode("ascii"))).decode()

    @classmethod
    def throwaway(cls) -> TrailSigner:
        """A key made for one process, for measurements whose trail nobody verifies."""
        key = ed25519.Ed25519PrivateKey.generate()
        return cls(key, key_id_of(key.public_key()))

    def public(self) -> TrailKeys:
        return TrailKeys((self.key.public_key(),), "the signing key")


@dataclass(frozen=True)
class TrailKeys:
    """Public keys entries are checked with, oldest first; `source` names where they came from."""

    keys: tuple[ed25519.Ed25519PublicKey, ...]
    source: str

    @cached_property
    def _ids(self) -> dict[str, int]:
        return {key_id_of(k): i for i, k in enumerate(self.keys)}

    def index(self, key_id: str) -> int | None:
        return self._ids.get(key_id)

    def check(self, key_id: str, entry_hash: str, signature: str) -> str | None:
        """Why `signature` is not the signature of `entry_hash` by key `key_id`; None if it is."""
        found = self.index(key_id)
        if found is None:
            return f"it is signed with an unknown key {key_id} (not in {self.source})"
        try:
            raw = base64.b64decode(signature, validate=True)
            self.keys[found].verify(raw, CONTEXT + entry_hash.encode("ascii"))
        except (InvalidSignature, binascii.Error, ValueError):
            return "its signature does not match: the entry or its hash was forged"
        return None


def key_id_of(key: ed25519.Ed25519PublicKey) -> str:
    return fingerprint(public_blob(key))


def load_signer(value: SecretStr | None) -> TrailSigner:
    """The signing key of setting `audit_signing_key`, or a clear error saying how to make one."""
    if value is None:
        raise SettingsError(
            [
                "audit_signing_key is not set: every audit entry is signed with a key the "
                f"database never sees. Make one ({_KEYGEN}), then set "
                "RETENTION_AUDIT_SIGNING_KEY_FILE to its path or use a systemd credential "
                "'audit-signing-key'; give its .pub line to auditors (audit_public_keys)"
            ]
        )
    text = value.get_secret_value().strip() + "\n"
    try:
        key = load_ssh_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SettingsError(
            [
                "audit_signing_key is not an unencrypted OpenSSH private key "
                f"(expected the file {_KEYGEN.rsplit(maxsplit=1)[-1]} made by '{_KEYGEN}')"
            ]
        ) from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SettingsError(["audit_signing_key must be an Ed25519 key (ssh-keygen -t ed25519)"])
    return TrailSigner(key, key_id_of(key.public_key()))


def read_public_keys(path: Path) -> TrailKeys:
    """The public keys file: one `ssh-ed25519 AAAA... [comment]` line per key, oldest first."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise SettingsError([f"audit_public_keys: cannot read {path}: {reason}"]) from None
    keys: list[ed25519.Ed25519PublicKey] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            key = load_ssh_public_key(line.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
            key = None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise SettingsError(
                [
                    f"audit_public_keys: {path}, line {number}: not an OpenSSH Ed25519 public "
                    "key (the .pub line of the signing key: 'ssh-ed25519 AAAA... comment')"
                ]
            )
        keys.append(key)
    if not keys:
        raise SettingsError([f"audit_public_keys: {path} holds no key"])
    return TrailKeys(tuple(keys), f"the public keys file {path}")


def trail_keys(public_keys: Path | None, signing_key: SecretStr | None) -> TrailKeys | None:
    """The keys entries are checked with: the public keys file, else the signing key's own
    public key, else None (signatures cannot be checked)."""
    if public_keys is not None:
        return read_public_keys(public_keys)
    return load_signer(signing_key).public() if signing_key is not None else None


def signer_for(public_keys: Path | None, signing_key: SecretStr | None) -> TrailSigner:
    """The signing key; when a public keys file is set, it must be its newest key (the one a
    rotation appended last), or the entries it signs would not verify."""
    signer = load_signer(signing_key)
    if public_keys is not None:
        keys = read_public_keys(public_keys)
        if keys.index(signer.id) != len(keys.keys) - 1:
            raise SettingsError(
                [
                    f"audit_signing_key ({signer.id}) is not the last key of {public_keys}: "
                    "append its .pub line there (keep the older lines: old entries verify "
                    "with them)"
                ]
            )
    return signer
