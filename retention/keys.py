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

    def digest(self, message: bytes) -> bytes:
        """HMAC-SHA-256 of `message` under this key."""
        mac = self._keyed.copy()  # the key's inner and outer pads are hashed once per key
        mac.update(message)
        return mac.digest()

    @cached_property
    def _keyed(self) -> hmac.HMAC:
        return hmac.new(self.secret, digestmod=hashlib.sha256)


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
