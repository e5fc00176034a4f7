"""PostgreSQL sessions: autocommit, explicit transactions, a fixed identity, pinned settings.

Every unit of work opens `with conn.transaction():`. The connection pins `search_path` and
`TimeZone` (the legal calendar's zone: `timestamptz::date` depends on it) and sets a fixed
`application_name`, so DBAs can see and cancel the tool in `pg_stat_activity`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import conninfo, sql
from psycopg.pq import TransactionStatus

from retention.engines import Connection
from retention.engines.session import Account
from retention.errors import DatabaseError
from retention.settings import Settings

# A batch reads and writes a few thousand records through their indexes. The planner's defaults
# misjudge that: with `= ANY(array)` of 6,000 link values it prefers scanning a whole class of a
# polymorphic table (random_page_cost 4 prices each index probe as a disk read; the pages are
# mostly cached), and it starts parallel workers whose start-up alone (~40 ms measured at
# 758,912 patients) dwarfs the 3 ms of work. These hold for the batch's transaction only.
_KEYED_LOOKUPS = (
    "set_config('random_page_cost', '1.1', true), "
    "set_config('max_parallel_workers_per_gather', '0', true), "
    "set_config('jit', 'off', true)"
)
# what `connect` pins and helper connections copy from the run's (`Session.pinned`)
_PINNED = ("TimeZone", "search_path")


def connect(settings: Settings, *, url: str | None = None) -> psycopg.Connection[Any]:
    """Open an autocommit connection with the tool's identity and pinned session settings."""
    target = url or settings.require_database_url()
    # temp_buffers: a run keeps its due subjects (about 10 MB for 290,000 of them) in a
    # temporary table walked batch after batch; beyond the default 8MB every batch rereads it
    # through the kernel. Memory is taken only as temporary tables use it.
    # row_security=off: a statement that row-level security would filter for this role fails
    # (SQLSTATE 42501) instead of seeing part of a table: never archive, count or minimise
    # part of a record while a cascade deletes the rows it hid (pg_dump does the same)
    options = (
        f"-c search_path={settings.search_path} -c TimeZone={settings.timezone} "
        "-c temp_buffers=64MB -c row_security=off"
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


class Session:
    """Transaction-local settings are `set_config(name, value, true)`: gone at commit."""

    def batch_limits(
        self, conn: Connection, *, lock_timeout_ms: int, statement_timeout_ms: int
    ) -> None:
        conn.execute(
            "SELECT set_config('lock_timeout', %s, true), "
            "set_config('statement_timeout', %s, true), " + _KEYED_LOOKUPS,
            (f"{lock_timeout_ms}ms", f"{statement_timeout_ms}ms"),
        )

    def autocommit_limits(
        self, conn: Connection, *, lock_timeout_ms: int, statement_timeout_ms: int
    ) -> None:
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false), "
            "set_config('statement_timeout', %s, false)",
            (f"{lock_timeout_ms}ms", f"{statement_timeout_ms}ms"),
        )

    def lock_timeout(self, conn: Connection, ms: int) -> None:
        if ms == 0:
            conn.execute("SELECT set_config('lock_timeout', '0', true)")
        else:
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{ms}ms",))

    def whole_tables(self, conn: Connection, work_mem_mb: int) -> None:
        conn.execute("SELECT set_config('work_mem', %s, true)", (f"{work_mem_mb}MB",))

    def slice_bound(self, conn: Connection) -> int | None:
        """None: a slice per connection (a hash aggregate spills to disk past work_mem, which
        the plan sets for its transaction)."""
        return None

    def grouped_at_once(self, conn: Connection, statement: sql.Composed) -> sql.Composed:
        return statement  # the planner chooses between hash and sorted aggregates itself

    def transaction_settings(self, conn: Connection, settings: Mapping[str, str]) -> None:
        if settings:
            conn.execute(
                sql.SQL("SELECT {}").format(
                    sql.SQL(", ").join(sql.SQL("set_config(%s, %s, true)") for _ in settings)
                ),
                [part for item in settings.items() for part in item],
            )

    def in_transaction(self, conn: Connection) -> bool:
        return bool(conn.info.transaction_status != TransactionStatus.IDLE)

    def pinned(self, conn: Connection) -> dict[str, str]:
        found = {}
        for name in _PINNED:
            row = conn.execute(f"SHOW {name}").fetchone()
            if row is not None:
                found[name] = str(row[0])
        return found

    def pin(self, conn: Connection, settings: Mapping[str, str]) -> None:
        for name, value in settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))

    def fresh_database(self, admin_url: str, name: str) -> str:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        params = conninfo.conninfo_to_dict(admin_url)
        params["dbname"] = name
        return conninfo.make_conninfo("", **params)

    def account(self, conn: Connection) -> Account:
        row = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        return Account(str(row[0]), bool(row[1])) if row else Account("", False)

    def server_epoch(self, conn: Connection) -> float:
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8").fetchone()
        assert row is not None
        return float(row[0])

    def identity(self, conn: Connection) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT current_database(), (SELECT oid FROM pg_database "
            "WHERE datname = current_database()), pg_postmaster_start_time()"
        ).fetchone()
        return tuple(row) if row else ()
