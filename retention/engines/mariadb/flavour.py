"""MariaDB or MySQL: which server a connection speaks to, read once at connect.

One engine folder serves both (the protocol, the driver and most SQL are shared); what callers
must do differently is a capability (`retention.engines.Capabilities`), chosen here from the
server's answer to `SELECT VERSION(), @@version_comment`, never by a name test in a caller
(`engine_of(conn)` gives a MySQL connection the engine with MySQL's capabilities). MySQL 8.0+
is designed for and 9.7 tested (`make test-mysql`, docs/ENGINES.md 5.2); its paths also run in
the tests on MariaDB with MySQL's capabilities forced. What differs (the manuals of both servers):

- no `DELETE ... RETURNING` (MariaDB 10.0.5+): archives read the locked rows, then delete them
  (`delete_returning`, mariadb/archive.py); no `INSERT ... RETURNING` (MariaDB 10.5+): the
  tool's own rows are read back by `LAST_INSERT_ID()` (`insert_returning`, engines/inserted.py);
- a TEMPORARY table named twice in one statement is error 1137 "Can't reopen table" (MariaDB
  reopens them since 10.2): the plan reads each of its temporary tables once per statement
  (`reopen_temporary_table`, plan/compute.py);
- no `max_statement_time`: `max_execution_time` (milliseconds) bounds SELECT statements only,
  so a batch's UPDATE or DELETE has no time limit of its own (`statement_time_on_dml`), only its
  lock waits (`innodb_lock_wait_timeout`, `lock_wait_timeout`, the same names on both);
- no `ADD COLUMN`, `ADD CONSTRAINT` or `CREATE INDEX ... IF NOT EXISTS`, and `CREATE TRIGGER IF
  NOT EXISTS` from 8.0.29 only: each such step of the tool's migrations asks information_schema
  whether its object exists first (`ddl_if_not_exists`, mariadb/schema.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from retention.engines import Capabilities
from retention.errors import DatabaseError

if TYPE_CHECKING:
    from retention.engines import Connection

Server = Literal["mariadb", "mysql"]

MARIADB_CAPABILITIES = Capabilities(
    shares_snapshots=False,  # no snapshot export: the plan runs on one connection
    delete_returning=True,  # DELETE ... RETURNING since 10.0.5 (not MySQL)
    update_returning=False,
    transactional_ddl=False,  # CREATE TABLE commits the transaction
    row_address=False,  # no ctid: tables need a key
    tablesample=False,
    statement_time_on_dml=True,  # max_statement_time bounds any statement (MySQL: SELECT)
    reopen_temporary_table=True,  # since 10.2 (MySQL: error 1137)
    writable_cte=False,  # no INSERT in WITH: a due table is filled by its own INSERT
    materializes_cte=False,
    disjoint_batch_locks=True,  # every locking statement reads the keys first
    arrays=False,  # lists are JSON arrays
    insert_returning=True,  # since 10.5 (not MySQL)
    ddl_if_not_exists=True,  # since 10.0 (MySQL: CREATE TRIGGER IF NOT EXISTS from 8.0.29 only)
)
# MySQL materialises a CTE read twice, but has no data-modifying CTE either: the plan stores
# its clock in temporary tables there too (`materializes_cte` stays False)
MYSQL_CAPABILITIES = replace(
    MARIADB_CAPABILITIES,
    delete_returning=False,
    insert_returning=False,
    statement_time_on_dml=False,
    reopen_temporary_table=False,
    ddl_if_not_exists=False,
)
OLDEST: dict[Server, tuple[int, int]] = {"mariadb": (10, 6), "mysql": (8, 0)}
_VERSION = re.compile(r"([0-9]+)\.([0-9]+)\.([0-9]+)")


@dataclass(frozen=True)
class Flavour:
    """The server of a connection: MariaDB or MySQL, and its version."""

    server: Server
    version: tuple[int, int, int]

    @property
    def capabilities(self) -> Capabilities:
        return MYSQL_CAPABILITIES if self.server == "mysql" else MARIADB_CAPABILITIES

    def statement_time(self, ms: int) -> dict[str, object]:
        """The session variable bounding each statement's time (0: no limit): MariaDB's
        `max_statement_time` (seconds, any statement), MySQL's `max_execution_time`
        (milliseconds, SELECT only)."""
        if self.server == "mysql":
            return {"max_execution_time": max(ms, 0)}
        return {"max_statement_time": max(ms, 0) / 1000}


MARIADB = Flavour("mariadb", (10, 6, 0))  # until the server has answered


def parse(version: str, comment: str) -> Flavour:
    """The flavour from `VERSION()` and `@@version_comment` (MariaDB names itself in one or
    the other: `10.11.19-MariaDB-0+deb12u1`, `mariadb.org binary distribution`)."""
    found = _VERSION.search(version)
    if found is None:
        raise DatabaseError(f"cannot read the server's version from {version!r}")
    numbers = (int(found[1]), int(found[2]), int(found[3]))
    server: Server = "mariadb" if "mariadb" in f"{version} {comment}".lower() else "mysql"
    if numbers[:2] < OLDEST[server]:
        oldest = ".".join(map(str, OLDEST[server]))
        label = "MariaDB" if server == "mariadb" else "MySQL"
        raise DatabaseError(
            f"the server is {label} {'.'.join(map(str, numbers))}: retention needs {label} "
            f"{oldest} or later",
            hint="upgrade the server, or point database_url at a supported one",
        )
    return Flavour(server, numbers)


def detect(conn: Connection) -> Flavour:
    """Ask the server which it is (one round trip, at connect)."""
    row = conn.execute("SELECT VERSION(), @@version_comment").fetchone()
    assert row is not None
    return parse(str(row[0]), str(row[1] or ""))


def of(conn: Connection) -> Flavour:
    """The server a connection of this engine speaks to (read by `detect` at connect)."""
    found = getattr(conn, "flavour", None)  # a MariaDBConnection's (no import of it: a cycle)
    if not isinstance(found, Flavour):
        raise TypeError(f"not a connection of the MariaDB engine: {type(conn).__name__}")
    return found
