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
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

from retention.engines import sql
from retention.errors import DatabaseError

if TYPE_CHECKING:
    from retention.engines.binlog import BinaryLog
    from retention.engines.catalogue import Catalog
    from retention.engines.dialect import Dialect
    from retention.settings import Settings


class Cursor(Protocol):
    """What a statement returns: rows and the count of rows it matched."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


@runtime_checkable
class Connection(Protocol):
    """An open autocommit connection; every unit of work runs in `with conn.transaction():`."""

    @property
    def closed(self) -> bool: ...
    @property
    def broken(self) -> bool: ...
    @property
    def info(self) -> Any: ...
    def execute(
        self,
        query: sql.SQL | sql.Composed | str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        prepare: bool | None = None,
        binary: bool = False,
    ) -> Cursor: ...
    def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AbstractContextManager[Any]: ...
    def cursor(self, *args: Any, **kwargs: Any) -> Any: ...
    def close(self) -> None: ...
    def cancel_safe(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None: ...


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


class Catalogue(Protocol):
    """An engine's reader of its system catalogue (into `engines/catalogue.py`'s classes)."""

    def read(self, conn: Connection, *, tool_schema: str) -> Catalog:
        """Every user table the connection sees, the system's and the tool's own left out."""
        ...

    def table_exists(self, conn: Connection, schema: str, name: str) -> bool:
        """Whether `schema.name` names a table or view now (on MariaDB/MySQL a schema is a
        database): the tool's own tables before it reads them, without reading a catalogue."""
        ...

    def transactional(
        self, conn: Connection, tables: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], bool]:
        """Whether a ROLLBACK undoes the changes to each of `tables` now (MyISAM, Aria: no),
        read live (a table's storage engine can change after the catalogue was read); a table
        not found is left out."""
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
    @property
    def catalogue(self) -> Catalogue: ...
    def binary_log(self, conn: Connection) -> BinaryLog:
        """The server's log of changes that outlives purged rows (binlog, archived WAL)."""
        ...

    @property
    def dialect(self) -> Dialect: ...


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
            return engine
    raise TypeError(f"no engine owns a connection of type {type(conn).__name__}")
