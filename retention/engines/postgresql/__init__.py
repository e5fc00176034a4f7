"""PostgreSQL: the engine the tool was built on; a psycopg 3 connection is its `Connection`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from retention.engines import Capabilities, Connection, Engine
from retention.engines.postgresql import binlog, session
from retention.engines.postgresql.archive import ArchiveRows
from retention.engines.postgresql.bulk import Bulk
from retention.engines.postgresql.catalogue import Catalogue
from retention.engines.postgresql.dialect import DIALECT
from retention.engines.postgresql.grants import Grants
from retention.engines.postgresql.locks import Locks
from retention.engines.postgresql.own_schema import OwnSchema
from retention.engines.postgresql.sample import Sampler
from retention.engines.postgresql.session import Session
from retention.engines.postgresql.snapshots import Snapshots
from retention.engines.rows import NamedCursorRows

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
        writable_cte=True,
        materializes_cte=True,
        disjoint_batch_locks=True,
        arrays=True,
        insert_returning=True,
        ddl_if_not_exists=True,  # unused: its migrations are transactions
    )
    # the concerns, one object each (their protocols: retention/engines/)
    catalogue = Catalogue()
    session = Session()
    rows = NamedCursorRows()
    locks = Locks()
    bulk = Bulk()
    snapshots = Snapshots()
    own_schema = OwnSchema()
    dialect = DIALECT
    sampler = Sampler()
    grants = Grants()
    archive = ArchiveRows()

    def for_connection(self, conn: Connection) -> Engine:
        return self

    def connect(self, settings: Settings, *, url: str | None = None) -> Connection:
        return session.connect(settings, url=url)

    def connection_lost(self, conn: Connection, exc: BaseException) -> bool:
        return session.connection_lost(conn, exc)

    def binary_log(self, conn: Connection) -> BinaryLog:
        return binlog.binary_log(conn)

    def owns(self, conn: Connection) -> bool:
        return isinstance(conn, psycopg.Connection)


ENGINE: Engine = PostgreSQL()  # mypy checks that it implements every concern


def raw(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection behind a PostgreSQL `Connection` (for COPY and other PG-only APIs)."""
    assert isinstance(conn, psycopg.Connection)
    return conn
