"""The demo hospital schema: a Mediboard-like patient database, as real ones are.

French column names, birth dates stored as text, the insured person beside the patient, stays and
consultations in separate tables (the consultation date only in the planning table), polymorphic
links (``object_class`` + ``object_id``, no foreign key), a change log keeping old values as JSON.

The shape is the same on every engine (`tables.py`); each engine writes its own DDL and loads
the generator's rows its own way: `postgresql.py`, `mariadb.py`. This module picks the engine's.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

from retention.demo import mariadb, postgresql
from retention.demo.tables import FOREIGN_KEYS, INDEXES, TABLES, Batch
from retention.engines import Connection, engine_of
from retention.errors import DatabaseError

__all__ = ["FOREIGN_KEYS", "INDEXES", "TABLES", "Loader", "create_schema", "loader_for"]


class Loader(Protocol):
    """How an engine loads the generator's batches."""

    def prepare(self, batch: Batch) -> Any:
        """The batch as the engine sends it; runs in the generator's thread."""
        ...

    def loading(self, conn: Connection, ids: Mapping[str, int]) -> AbstractContextManager[None]:
        """Around every `write`: what the engine does before and after a bulk load (`ids`: the
        last id generated per table, read at the end)."""
        ...

    def write(self, conn: Connection, prepared: Any) -> None: ...


def _engine(conn: Connection) -> str:
    name = engine_of(conn).name
    if name not in ("postgresql", "mariadb"):
        raise DatabaseError(f"the demo hospital cannot be built on {name}")
    return name


def create_schema(conn: Connection) -> None:
    """Create the demo tables, their indexes and foreign keys in an empty database (PostgreSQL:
    schema ``public``, in one transaction; MariaDB: the connection's database)."""
    if _engine(conn) == "mariadb":
        mariadb.create_schema(conn)
    else:
        postgresql.create_schema(conn)


def loader_for(conn: Connection) -> Loader:
    """The loader of the connection's engine."""
    if _engine(conn) == "mariadb":
        return mariadb.MariaDBLoader()
    return postgresql.PostgreSQLLoader()
