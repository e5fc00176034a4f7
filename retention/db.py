"""Database connections: the engine of the URL opens them (retention/engines/).

Every unit of work opens `with conn.transaction():`. Each engine pins its session (PostgreSQL:
`search_path`, `TimeZone`, a fixed `application_name`, so DBAs can see and cancel the tool).
"""

from __future__ import annotations

from retention.engines import Connection, engine_for, engine_of
from retention.settings import Settings


def connect(settings: Settings, *, url: str | None = None) -> Connection:
    """Open an autocommit connection with the tool's identity and pinned session settings."""
    target = url or settings.require_database_url()
    return engine_for(target).connect(settings, url=target)


def connection_lost(conn: Connection, exc: BaseException) -> bool:
    """The connection is gone (not a refused statement): the caller reconnects and retries."""
    return engine_of(conn).connection_lost(conn, exc)
