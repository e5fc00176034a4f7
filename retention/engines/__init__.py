"""The database-engine seam: what callers hold, whichever engine runs.

In the spirit of Patroni's `AbstractDCS` and SQLAlchemy's dialects (docs/ENGINES.md): callers
take a :class:`Connection` and compose SQL with :mod:`retention.engines.sql`; everything that
differs between engines lives in one folder per engine (`postgresql/`, `mariadb/`) behind
:class:`Engine`. :func:`engine_for` picks the engine from a URL's scheme, :func:`engine_of`
from an open connection.

The connection protocol is the subset of psycopg 3's `Connection` that the tool uses, so a
psycopg connection *is* a PostgreSQL `Connection` (no wrapper, no cost); another engine's
connection implements the same subset over its own driver and renders the same composed SQL
with its own quoting (`mariadb/render.py`). Errors keep SQL's standard vocabulary (SQLSTATE
classes, :mod:`retention.engines.errors`): another engine's driver errors are translated into
it, so `except errors.LockNotAvailable` means the same on every engine.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

# re-exported: callers import them from here
from retention.engines.connection import Connection as Connection
from retention.engines.connection import Cursor as Cursor
from retention.errors import DatabaseError

if TYPE_CHECKING:
    from retention.engines.archive import ArchiveRows
    from retention.engines.binlog import BinaryLog
    from retention.engines.bulk import Bulk
    from retention.engines.catalogue import Catalog, Footprint
    from retention.engines.dialect import Dialect
    from retention.engines.grants import Grants
    from retention.engines.locks import Locks
    from retention.engines.own_schema import OwnSchema
    from retention.engines.rows import Rows
    from retention.engines.sample import Sampler
    from retention.engines.session import Session
    from retention.engines.snapshots import Snapshots
    from retention.settings import Settings


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do, where callers must choose another way (docs/ENGINES.md, 3)."""

    shares_snapshots: bool
    delete_returning: bool
    update_returning: bool
    transactional_ddl: bool
    row_address: bool
    tablesample: bool
    statement_time_on_dml: bool
    reopen_temporary_table: bool
    writable_cte: bool  # INSERT inside WITH (PostgreSQL); else the statements run one by one
    # a CTE read several times is computed once (PostgreSQL `AS MATERIALIZED`); else the plan
    # stores what it reads often in temporary tables (MariaDB evaluates it per reference)
    materializes_cte: bool
    # batches of distinct subjects lock distinct rows, so they can run side by side (an engine
    # whose statements may scan a table and keep every row they read locked must not: on
    # MariaDB the dialect drives every locking statement from the batch's keys instead)
    disjoint_batch_locks: bool
    arrays: bool  # array columns (PostgreSQL text[]); else a list is stored as a JSON array
    insert_returning: bool  # INSERT ... RETURNING (MariaDB 10.5+); else engines/inserted.py
    # ADD COLUMN, ADD CONSTRAINT, CREATE INDEX and CREATE TRIGGER ... IF NOT EXISTS (MariaDB);
    # else the tool's migrations ask information_schema first (MySQL 8: mariadb/schema.py)
    ddl_if_not_exists: bool


class Catalogue(Protocol):
    """An engine's reader of its system catalogue (into `engines/catalogue.py`'s classes)."""

    def read(self, conn: Connection, *, tool_schema: str) -> Catalog:
        """Every user table the connection sees, the system's and the tool's own left out."""
        ...

    def table_exists(self, conn: Connection, schema: str, name: str) -> bool:
        """Whether `schema.name` names a table or view now (on MariaDB/MySQL a schema is a
        database): the tool's own tables before it reads them, without reading a catalogue."""
        ...

    def may(
        self, conn: Connection, schema: str, name: str, privileges: Collection[str]
    ) -> bool | None:
        """Whether the connection's account holds every one of `privileges` (SELECT,
        INSERT...) on the table `schema.name`; None when no such table exists."""
        ...

    def cannot_update(
        self, conn: Connection, schema: str, name: str, columns: Sequence[str]
    ) -> list[str] | None:
        """Those of `columns` of the table `schema.name` the account may not UPDATE, however
        it holds the privilege (on the table, on the column, through a role), in their order;
        None when no such table exists."""
        ...

    def may_lock(self, conn: Connection, schema: str, name: str) -> bool | None:
        """Whether the account may lock rows of `schema.name` with `SELECT ... FOR UPDATE`
        (PostgreSQL and MySQL 8 want UPDATE on one column at least, MariaDB SELECT); None
        when no such table exists."""
        ...

    def may_create_temporary(self, conn: Connection) -> bool:
        """Whether the account may create temporary tables in the connection's database
        (plan, run and report stage the clock and the due subjects in them)."""
        ...

    def transactional(
        self, conn: Connection, tables: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], bool]:
        """Whether a ROLLBACK undoes the changes to each of `tables` now (MyISAM, Aria: no),
        read live (a table's storage engine can change after the catalogue was read); a table
        not found is left out."""
        ...

    def existing_columns(
        self, conn: Connection, columns: Collection[tuple[str, str, str]], *, tool_schema: str
    ) -> set[tuple[str, str, str]]:
        """Those of `columns` (schema, table, column) that exist now (the inventory leaves
        out the verdicts of columns dropped since their scan)."""
        ...

    def may_be_large(
        self, conn: Connection, tables: Collection[tuple[str, str]], rows: int
    ) -> bool:
        """Whether one of `tables` may hold `rows` rows or more, by the planner's estimate (a
        table never analysed counts as large): whether slicing its clock is worth helpers."""
        ...

    def footprint(self, conn: Connection, tables: Collection[tuple[str, str]]) -> Footprint | None:
        """The bytes `tables` take and the bytes of the server's own page cache (MariaDB/MySQL:
        InnoDB's buffer pool; PostgreSQL: shared buffers); None when the engine reads through
        another cache too and a window need not fit this one (the caller keeps its default)."""
        ...


class Engine(Protocol):
    """One database engine: its name, the URL schemes it accepts, and its implementations."""

    @property
    def name(self) -> str: ...
    @property
    def schemes(self) -> tuple[str, ...]: ...
    @property
    def capabilities(self) -> Capabilities: ...
    def connect(self, settings: Settings, *, url: str | None = None) -> Connection: ...
    def connection_lost(self, conn: Connection, exc: BaseException) -> bool: ...
    def owns(self, conn: Connection) -> bool: ...
    def for_connection(self, conn: Connection) -> Engine:
        """The engine serving this connection (owned by this one): itself, or the same
        engine with another server's capabilities (a MySQL server behind the MariaDB one)."""
        ...

    @property
    def catalogue(self) -> Catalogue: ...
    def binary_log(self, conn: Connection) -> BinaryLog:
        """The server's log of changes that outlives purged rows (binlog, archived WAL)."""
        ...

    @property
    def session(self) -> Session: ...
    @property
    def rows(self) -> Rows: ...
    @property
    def locks(self) -> Locks: ...
    @property
    def bulk(self) -> Bulk: ...
    @property
    def snapshots(self) -> Snapshots: ...
    @property
    def own_schema(self) -> OwnSchema: ...
    @property
    def dialect(self) -> Dialect: ...
    @property
    def grants(self) -> Grants:
        """`retention grants --role`: the least privileges, as a script."""
        ...

    @property
    def sampler(self) -> Sampler:
        """A bounded sample of a table's rows (`retention scan`)."""
        ...

    @property
    def archive(self) -> ArchiveRows:
        """An archive batch's rows deleted and given back as CSV (engines/archive.py)."""
        ...


# scheme -> the module whose ENGINE serves it; imported on first use (drivers are heavy)
_ENGINES: dict[str, str] = {
    "postgresql": "retention.engines.postgresql",
    "postgres": "retention.engines.postgresql",
    "mariadb": "retention.engines.mariadb",
    "mysql": "retention.engines.mariadb",
}


def _load(module: str) -> Engine:
    engine: Engine = importlib.import_module(module).ENGINE
    return engine


def engine_for(url: str) -> Engine:
    """The engine of a database URL, by its scheme (a conninfo string is PostgreSQL's)."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else "postgresql"
    module = _ENGINES.get(scheme)
    if module is None:
        known = ", ".join(sorted(_ENGINES))
        raise DatabaseError(
            f"database_url has the scheme {scheme!r}, which no engine serves",
            hint=f"use one of: {known}",
        )
    return _load(module)


def engine_of(conn: Connection) -> Engine:
    """The engine an open connection belongs to."""
    for module in dict.fromkeys(_ENGINES.values()):
        try:
            engine = _load(module)
        except ImportError:  # an engine whose driver is not installed owns no connection
            continue
        if engine.owns(conn):
            return engine.for_connection(conn)
    raise TypeError(f"no engine owns a connection of type {type(conn).__name__}")
