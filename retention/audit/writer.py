"""The one place an audit trail is opened for writing: its keys, read from the settings, and
the actor, read from the connection. Commands, the daemon and runs all open it here."""

from __future__ import annotations

from dataclasses import dataclass

from retention.audit.seal import TrailSigner, signer_for
from retention.audit.trail import AuditTrail, actor
from retention.engines import Connection
from retention.keys import Key, load_key
from retention.settings import Settings


@dataclass(frozen=True)
class AuditKeys:
    """What entries are written with: the key of the subjects' digests, and the signing key."""

    key: Key
    signer: TrailSigner


def audit_keys(settings: Settings) -> AuditKeys:
    """Both keys (settings audit_key and audit_signing_key); a clear error when one is
    missing, or when the signing key is not the newest of audit_public_keys."""
    key = load_key(settings.audit_key, "audit_key")
    return AuditKeys(key, signer_for(settings.audit_public_keys, settings.audit_signing_key))


def open_trail(conn: Connection, schema: str, keys: AuditKeys) -> AuditTrail:
    """The trail of `<schema>.audit`, its entries by this process's actor."""
    return AuditTrail(schema, keys.key, actor(conn), keys.signer)
