"""MariaDB sessions: the driver, and the settings every session pins at connect.

Pinned at connect, whatever the server's defaults (docs/ENGINES.md, 2.1 and 2.2):

- autocommit on; every unit of work opens `with conn.transaction():`;
- `utf8mb4` (`SET NAMES`): text travels as UTF-8, as archives expect;
- `time_zone = '+00:00'`: TIMESTAMP values read in UTC (named zones need the server's zone
  tables, often empty);
- `sql_mode` without `ANSI_QUOTES` (double quotes would name columns), `PIPES_AS_CONCAT` and
  `NO_BACKSLASH_ESCAPES` (the driver's escaping assumes backslashes escape), strict for
  transactional tables; without `NO_ZERO_DATE`, so that archived rows holding zero dates can be
  restored as they were;
- READ COMMITTED, set by the statement (the variable's name differs between MariaDB and MySQL):
  REPEATABLE READ's gap locks would block the hospital's inserts next to the locked rows;
- the `FOUND_ROWS` client flag: an UPDATE's row count is the rows it *matched*, as on
  PostgreSQL, not only the rows whose values changed;
- no automatic reconnection (a new session would silently lose the transaction and these
  settings) and no `LOCAL INFILE` (it lets a server ask the client for any readable file).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

from retention.engines.mariadb.errors import is_lost
from retention.engines.mariadb.target import parse_url
from retention.errors import DatabaseError
from retention.settings import Settings

if TYPE_CHECKING:
    from retention.engines import Connection
    from retention.engines.mariadb.connection import MariaDBConnection

SQL_MODE = "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION"
SESSION = (
    "SET NAMES utf8mb4",
    f"SET SESSION time_zone = '+00:00', SESSION sql_mode = '{SQL_MODE}'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
)
INSTALL_HINT = (
    "install it: apt-get install libmariadb-dev pkg-config gcc, then "
    "pip install 'retention[mariadb]' (`make venv` does both)"
)


def connect(settings: Settings, *, url: str | None = None) -> MariaDBConnection:
    """Open an autocommit connection with the session pinned (module docstring)."""
    target = parse_url(url or settings.require_database_url())
    driver = load_driver()
    from mariadb.constants import CLIENT

    from retention.engines.mariadb.connection import MariaDBConnection

    try:
        raw = driver.connect(
            **target.driver_kwargs(),
            connect_timeout=settings.connect_timeout,
            client_flag=CLIENT.FOUND_ROWS,
            autocommit=True,
            local_infile=False,
        )
    except driver.Error as exc:
        raise DatabaseError(
            f"cannot connect to the database: {_first_line(exc)}",
            hint="check database_url, that the server runs, and that the account may connect "
            "from this host",
        ) from None
    conn = MariaDBConnection(raw, target, timezone=settings.timezone)
    _pin(conn)
    return conn


def connection_lost(conn: Connection, exc: BaseException) -> bool:
    """The connection is gone (2006, 2013, 4031, 1927...), not a refused statement: the caller
    reconnects and retries rather than report the statement as failed."""
    return conn.closed or is_lost(exc)


def load_driver() -> Any:
    """MariaDB Connector/Python, or a clear error saying how to install it."""
    try:
        import mariadb
    except ImportError as exc:
        raise DatabaseError(
            f"the MariaDB driver (mariadb) cannot be loaded: {exc}", hint=INSTALL_HINT
        ) from None
    return mariadb


def _pin(conn: MariaDBConnection) -> None:
    try:
        for statement in SESSION:
            conn.execute(statement)
    except psycopg.Error as exc:
        conn.close()
        raise DatabaseError(
            f"cannot set up the database session: {_first_line(exc)}",
            hint="the server must accept utf8mb4, time_zone '+00:00' and this sql_mode",
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
