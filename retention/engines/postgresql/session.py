"""PostgreSQL sessions: autocommit, explicit transactions, a fixed identity, pinned settings.

Every unit of work opens `with conn.transaction():`. The connection pins `search_path` and
`TimeZone` (the legal calendar's zone: `timestamptz::date` depends on it) and sets a fixed
`application_name`, so DBAs can see and cancel the tool in `pg_stat_activity`.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo

from retention.errors import DatabaseError
from retention.settings import Settings


def connect(settings: Settings, *, url: str | None = None) -> psycopg.Connection[Any]:
    """Open an autocommit connection with the tool's identity and pinned session settings."""
    target = url or settings.require_database_url()
    # temp_buffers: a run keeps its due subjects (about 10 MB for 290,000 of them) in a
    # temporary table walked batch after batch; beyond the default 8MB every batch rereads it
    # through the kernel. Memory is taken only as temporary tables use it.
    options = (
        f"-c search_path={settings.search_path} -c TimeZone={settings.timezone} "
        "-c temp_buffers=64MB"
    )
    try:
        params = conninfo.conninfo_to_dict(target)
    except psycopg.ProgrammingError:
        raise DatabaseError(
            "database_url is not a valid PostgreSQL URL or conninfo string",
            hint="e.g. postgresql://user@host:5432/dbname",
        ) from None
    params.update(
        application_name=settings.application_name,
        # text travels as UTF-8 whatever the database's encoding or PGCLIENTENCODING: archives
        # hold the bytes COPY sends, and their format says UTF-8
        client_encoding="UTF8",
        options=options,
        connect_timeout=settings.connect_timeout,
    )
    try:
        return psycopg.connect(conninfo.make_conninfo("", **params), autocommit=True)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to the database: {_first_line(exc)}",
            hint="check database_url, that the server runs, and pg_hba.conf",
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def connection_lost(conn: Any, exc: BaseException) -> bool:
    """The connection is gone (class 08, or closed by the server), not a refused statement:
    the caller reconnects and retries rather than report the statement as failed."""
    return conn.closed or (
        isinstance(exc, psycopg.OperationalError) and (exc.sqlstate or "08").startswith("08")
    )
