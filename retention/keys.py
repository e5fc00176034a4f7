"""Secret keys: the pseudonymisation key and the audit key.

Keys come from settings (a file, a systemd credential or the environment), are used only inside
this process, and are identified by a key id (a digest that reveals nothing about the key) that
is recorded with each action. A key never reaches the database server.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import cached_property

from pydantic import SecretStr

from retention.errors import SettingsError

MIN_KEY_BYTES = 32


@dataclass(frozen=True)
class Key:
    """A secret key and its public id."""

    secret: bytes = field(repr=False)
    id: str

    def __hash__(self) -> int:
        # the id is derived from the secret: hashing it alone is as good, and cheaper than
        # hashing both for every cached pseudonym lookup (retention.actions.pseudonymize)
        return hash(self.id)

    def digest(self, message: bytes) -> bytes:
        """HMAC-SHA-256 of `message` under this key (RFC 2104)."""
        inner, outer = self._pads
        mac = inner.copy()  # the key's inner and outer pads are hashed once per key
        mac.update(message)
        result = outer.copy()
        result.update(mac.digest())
        return result.digest()

    @cached_property
    def _pads(self) -> tuple[hashlib._Hash, hashlib._Hash]:
        """SHA-256 states after the key's inner and outer pads: the two copies per message
        cost half of `hmac.HMAC.copy` (subject digests and pseudonyms, hundreds of thousands
        per run)."""
        block = hashlib.sha256().block_size
        padded = (
            hashlib.sha256(self.secret).digest() if len(self.secret) > block else self.secret
        ).ljust(block, b"\0")
        return (
            hashlib.sha256(bytes(b ^ 0x36 for b in padded)),
            hashlib.sha256(bytes(b ^ 0x5C for b in padded)),
        )


def load_key(value: SecretStr | None, name: str) -> Key:
    """A key from its setting: at least 32 bytes of secret (hex, or any text that long)."""
    if value is None:
        raise SettingsError(
            [
                f"{name} is not set: put a random secret of at least {MIN_KEY_BYTES} bytes in a "
                f"file and set RETENTION_{name.upper()}_FILE, or use a systemd credential "
                f"'{name.replace('_', '-')}'"
            ]
        )
    text = value.get_secret_value().strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = text.encode("utf-8")
    if len(secret) < MIN_KEY_BYTES:
        raise SettingsError(
            [
                f"{name} is too short: {len(secret)} bytes, at least {MIN_KEY_BYTES} are needed "
                "(e.g. 'openssl rand -hex 32')"
            ]
        )
    key_id = hmac.new(secret, b"retention key id", hashlib.sha256).hexdigest()[:16]
    return Key(secret, key_id)
