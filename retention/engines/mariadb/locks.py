"""MariaDB's locks: a named lock for the run, a row of the tool's `locks` table in a transaction.

- **The run lock** is `GET_LOCK(name, 0)`: held by the session until `RELEASE_LOCK` or until the
  session ends (the server releases it then, so holding it proves that no other run is alive),
  and it survives COMMIT and ROLLBACK. Named locks are **server-wide**, not per database: the
  name holds the connection's database (`retention.run.<database>`), and past 64 characters
  (MySQL refuses longer names) a SHA-256 digest of it instead. A session taking it twice holds
  it twice (MariaDB counts, as PostgreSQL's advisory locks do). The holder is
  `IS_USED_LOCK(name)`, a connection id, whose host `information_schema.PROCESSLIST` shows (to an
  account with the PROCESS privilege, or to the holder's own account). PROCESSLIST has no
  session start (its TIME is the seconds spent in the current command, not since connecting),
  so a holder's `since` is None rather than a misleading moment. Not for Galera clusters (named
  locks are not replicated, docs/ENGINES.md 2.7).
- **A transaction lock** cannot be a named lock (`GET_LOCK` ignores transactions): the audit
  chain's appender locks its row of the tool's own `locks` table `FOR UPDATE`, released when the
  transaction commits or rolls back (migration 002 creates the table and the row). Migrations
  cannot run in one transaction on MariaDB (DDL commits): the migrator takes its own named
  lock (engines/mariadb/schema.py), so `MIGRATIONS` is refused here.
"""

from __future__ import annotations

import hashlib

import psycopg
from psycopg.pq import TransactionStatus

from retention.engines import Connection, errors, sql
from retention.engines.locks import Holder, TransactionLock
from retention.engines.mariadb import flavour
from retention.errors import DatabaseError

_PREFIX = "retention.run."
_NAME_MAX = 64  # MySQL refuses longer lock names (MariaDB 10.11 accepts them)
LOCKS_TABLE = "locks"  # the tool's table whose rows are transaction locks (migration 002)


def run_lock_name(database: str) -> str:
    """The run lock's name for `database` (server-wide: the database is in it)."""
    name = _PREFIX + database
    if len(name) <= _NAME_MAX:
        return name
    return _PREFIX + hashlib.sha256(database.encode()).hexdigest()[: _NAME_MAX - len(_PREFIX)]


def _name(conn: Connection) -> str:
    row = conn.execute("SELECT DATABASE()").fetchone()
    if row is None or row[0] is None:
        raise DatabaseError(
            "the connection has no database: the run lock is one per database",
            hint="put the database in database_url (mariadb://user@host:3306/database)",
        )
    return run_lock_name(str(row[0]))


# a connection's host: MySQL fails any read of its PROCESSLIST while a session's statement text
# holds bytes utf8mb3 cannot hold (a batch's parameters, which MySQL writes into the text):
# there performance_schema.threads, which gives it without the text (MariaDB's
# performance_schema is off by default)
_HOST = "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = %s"
_HOST_MYSQL = "SELECT PROCESSLIST_HOST FROM performance_schema.threads WHERE PROCESSLIST_ID = %s"


class Locks:
    def try_run_lock(self, conn: Connection) -> bool:
        row = conn.execute("SELECT GET_LOCK(%s, 0)", (_name(conn),)).fetchone()
        return bool(row and row[0] == 1)

    def release_run_lock(self, conn: Connection) -> None:
        conn.execute("SELECT RELEASE_LOCK(%s)", (_name(conn),)).fetchall()

    def run_lock_holder(self, conn: Connection) -> Holder | None:
        row = conn.execute("SELECT IS_USED_LOCK(%s)", (_name(conn),)).fetchone()
        if row is None or row[0] is None:
            return None
        return Holder(int(row[0]), _host(conn, int(row[0])), None)

    def lock_in_transaction(
        self, conn: Connection, lock: TransactionLock, *, schema: str = "retention"
    ) -> None:
        """Lock the row of `lock` in `schema`.locks FOR UPDATE (waits are bounded by the
        transaction's lock and statement limits); a clear error when the row is not there."""
        if lock is TransactionLock.MIGRATIONS:
            raise psycopg.ProgrammingError(
                "migrations on MariaDB take the migrator's named lock (DDL commits the "
                "transaction): engines/mariadb/schema.py"
            )
        if conn.info.transaction_status == TransactionStatus.IDLE:
            raise psycopg.ProgrammingError(
                "a transaction lock needs `with conn.transaction():` around it"
            )
        row = conn.execute(
            sql.SQL("SELECT name FROM {} WHERE name = %s FOR UPDATE").format(
                sql.Identifier(schema, LOCKS_TABLE)
            ),
            (lock.value,),
        ).fetchone()
        if row is None:
            raise DatabaseError(
                f"the tool's lock {lock.value!r} is missing from {schema}.{LOCKS_TABLE}",
                hint="run `retention init` to create or repair the tool's schema",
            )


def _host(conn: Connection, connection_id: int) -> str | None:
    """The host of a connection, when this account may see it: a courtesy of the message that
    names the run lock's holder, never a reason for the command to fail (an account without
    SELECT on performance_schema, a statement text MySQL cannot convert)."""
    query = _HOST_MYSQL if flavour.of(conn).server == "mysql" else _HOST
    try:
        with conn.transaction():  # a savepoint inside a block: a refusal leaves it usable
            row = conn.execute(query, (connection_id,)).fetchone()
    except (errors.InsufficientPrivilege, errors.OperationalError):
        return None
    return None if row is None or row[0] is None else str(row[0])
