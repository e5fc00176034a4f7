"""PostgreSQL: the engine the tool was built on; a psycopg 3 connection is its `Connection`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from retention.engines import Capabilities, Connection
from retention.engines.postgresql import binlog, session
from retention.engines.postgresql.catalogue import Catalogue
from retention.engines.postgresql.dialect import DIALECT

if TYPE_CHECKING:
    from retention.engines.binlog import BinaryLog
    from retention.settings import Settings


class PostgreSQL:
    name = "postgresql"
    schemes = ("postgresql", "postgres")
    capabilities = Capabilities(
        shares_snapshots=True,
        delete_returning=True,
        update_returning=True,
        transactional_ddl=True,
        row_address=True,
        tablesample=True,
        statement_time_on_dml=True,
        reopen_temporary_table=True,
    )
    catalogue = Catalogue()
    dialect = DIALECT

    def connect(self, settings: Settings, *, url: str | None = None) -> Connection:
        return session.connect(settings, url=url)

    def connection_lost(self, conn: Connection, exc: BaseException) -> bool:
        return session.connection_lost(conn, exc)

    def binary_log(self, conn: Connection) -> BinaryLog:
        return binlog.binary_log(conn)

    def owns(self, conn: Connection) -> bool:
        return isinstance(conn, psycopg.Connection)


ENGINE = PostgreSQL()


def raw(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection behind a PostgreSQL `Connection` (for COPY and other PG-only APIs)."""
    assert isinstance(conn, psycopg.Connection)
    return conn
