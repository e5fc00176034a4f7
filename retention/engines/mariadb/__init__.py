"""MariaDB (10.6 and later; MySQL 8.0+ designed for, 9.7 tested): the second engine (issue 20).

The driver is MariaDB Connector/Python (`mariadb` 1.1), chosen by measurement
(bench/RESULTS.md, "MariaDB/MySQL drivers"): 3.2 to 10.8 times faster than mysqlclient and
PyMySQL at streaming rows, MariaDB's bulk protocol for `executemany`, values sent apart from the
SQL text, errors with errno and SQLSTATE. It is imported only when a MariaDB URL is used.

- `render.py`: psycopg.sql trees as MariaDB SQL (backticks, `?` parameters);
- `cursor.py`, `connection.py`: psycopg's connection and cursor API over the driver, with
  PostgreSQL's transaction rules;
- `errors.py`: driver errors as `retention.engines.errors` classes;
- `target.py`: the URL; `session.py`: the driver, the settings pinned at connect, and the
  session concern (limits for a transaction, set and put back); `locks.py`: the run's named
  lock, transaction locks on rows of the tool's `locks` table; `rows.py`: streamed results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retention.engines import Connection, Engine
from retention.engines.mariadb import binlog, session, target
from retention.engines.mariadb.archive import ArchiveRows
from retention.engines.mariadb.bulk import Bulk as MariaDBBulk
from retention.engines.mariadb.catalogue import Catalogue
from retention.engines.mariadb.dialect import DIALECT
from retention.engines.mariadb.flavour import MARIADB_CAPABILITIES, MYSQL_CAPABILITIES
from retention.engines.mariadb.grants import Grants
from retention.engines.mariadb.locks import Locks
from retention.engines.mariadb.sample import Sampler
from retention.engines.mariadb.schema import OwnSchema
from retention.engines.mariadb.session import Session
from retention.engines.mariadb.snapshots import Snapshots as MariaDBSnapshots
from retention.engines.rows import NamedCursorRows

if TYPE_CHECKING:
    from retention.engines.archive import ArchiveRows as ArchiveRowsProtocol
    from retention.engines.binlog import BinaryLog
    from retention.engines.bulk import Bulk
    from retention.engines.snapshots import Snapshots
    from retention.settings import Settings


class MariaDB:
    name = "mariadb"
    schemes = target.SCHEMES
    # MariaDB's; a MySQL server's connection gets `MYSQL` (`for_connection`, flavour.py)
    capabilities = MARIADB_CAPABILITIES
    catalogue = Catalogue()
    session = Session()
    rows = NamedCursorRows()
    locks = Locks()
    bulk: Bulk = MariaDBBulk()
    snapshots: Snapshots = MariaDBSnapshots()  # each statement its own moment (shares_snapshots)
    own_schema = OwnSchema()
    dialect = DIALECT
    sampler = Sampler()
    grants = Grants()

    @property
    def archive(self) -> ArchiveRowsProtocol:
        # DELETE ... RETURNING by key; without it (MySQL 8), read the locked rows then delete
        return ArchiveRows(delete_returning=self.capabilities.delete_returning)

    def for_connection(self, conn: Connection) -> Engine:
        from retention.engines.mariadb.connection import MariaDBConnection

        mysql = isinstance(conn, MariaDBConnection) and conn.flavour.server == "mysql"
        return MYSQL if mysql else self

    def connect(self, settings: Settings, *, url: str | None = None) -> Connection:
        return session.connect(settings, url=url)

    def connection_lost(self, conn: Connection, exc: BaseException) -> bool:
        return session.connection_lost(conn, exc)

    def binary_log(self, conn: Connection) -> BinaryLog:
        return binlog.binary_log(conn)

    def owns(self, conn: Connection) -> bool:
        try:
            from retention.engines.mariadb.connection import MariaDBConnection
        except ImportError:  # no driver, hence no MariaDB connection
            return False
        return isinstance(conn, MariaDBConnection)


class MySQL(MariaDB):
    """A MySQL 8.0+ server's connection: MariaDB's engine with MySQL's capabilities."""

    capabilities = MYSQL_CAPABILITIES

    def for_connection(self, conn: Connection) -> Engine:
        return self


ENGINE: Engine = MariaDB()  # mypy checks that it implements every concern
MYSQL: Engine = MySQL()
