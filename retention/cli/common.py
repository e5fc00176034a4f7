"""Helpers shared by commands: keys, the audit trail, the policies of a command."""

from __future__ import annotations

from retention.audit.seal import TrailKeys, trail_keys
from retention.audit.trail import AuditTrail
from retention.audit.writer import audit_keys, open_trail
from retention.engines import Connection, engine_of
from retention.errors import DatabaseError
from retention.keys import Key, load_key
from retention.settings import Settings
from retention.store.schema import migrate, refuse_a_stray_schema


def audit_key(settings: Settings) -> Key:
    return load_key(settings.audit_key, "audit_key")


def audit_key_if_set(settings: Settings) -> Key | None:
    """The audit key when it is set (commands that read the trail can do without it)."""
    return audit_key(settings) if settings.audit_key is not None else None


def public_keys(settings: Settings) -> TrailKeys | None:
    """The public keys audit entries are checked with (None: none is configured)."""
    return trail_keys(settings.audit_public_keys, settings.audit_signing_key)


def trail(conn: Connection, settings: Settings) -> AuditTrail:
    """The audit trail a command writes to (retention.audit.writer)."""
    return open_trail(conn, settings.schema_name, audit_keys(settings))


def ensure_schema(conn: Connection, settings: Settings) -> None:
    """Create or upgrade the tool's schema when the role may; otherwise it must be current.
    Never a new one beside the tool's existing schema (`refuse_a_stray_schema`)."""
    refuse_a_stray_schema(conn, settings.schema_name)
    try:
        migrate(conn, settings.schema_name)
    except DatabaseError:
        if not engine_of(conn).catalogue.table_exists(conn, settings.schema_name, "audit"):
            raise
