"""MariaDB sessions: the URL, the driver, and the settings every session pins at connect.

`mariadb://user:password@host:3306/dbname` (or `mysql://`); the database is the session's
default one (a "schema" is a database in MariaDB). Options in the query string: `unix_socket`,
`ssl`, `ssl_ca`, `ssl_cert`, `ssl_key`, `ssl_verify_cert`. Pinned at connect, whatever the
server's defaults (docs/ENGINES.md, 2.1 and 2.2):

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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import psycopg

from retention.engines.mariadb.errors import is_lost
from retention.errors import DatabaseError
from retention.settings import Settings

if TYPE_CHECKING:
    from retention.engines import Connection
    from retention.engines.mariadb.connection import MariaDBConnection

SCHEMES = ("mariadb", "mysql")
DEFAULT_PORT = 3306
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
_TEXT_OPTIONS = ("unix_socket", "ssl_ca", "ssl_cert", "ssl_key")
_FLAG_OPTIONS = ("ssl", "ssl_verify_cert")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_EXAMPLE = (
    "e.g. mariadb://user:password@host:3306/dbname; percent-encode @ : / ? # in the user name "
    "or the password"
)


@dataclass(frozen=True)
class Target:
    """Where to connect, from the URL; the password never appears in `repr` or `dsn()`."""

    scheme: str
    host: str
    port: int
    user: str | None
    password: str | None = field(repr=False)
    database: str
    options: tuple[tuple[str, str | bool], ...] = ()

    def driver_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"host": self.host, "port": self.port, **dict(self.options)}
        if self.user is not None:
            kwargs["user"] = self.user
        if self.password is not None:
            kwargs["password"] = self.password
        if self.database:
            kwargs["database"] = self.database
        return kwargs

    def dsn(self) -> str:
        """The URL without its password (what `conn.info.dsn` shows)."""
        user = f"{quote(self.user, safe='')}@" if self.user is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = "&".join(f"{name}={_option_text(value)}" for name, value in self.options)
        dsn = f"{self.scheme}://{user}{host}:{self.port}/{quote(self.database, safe='')}"
        return f"{dsn}?{query}" if query else dsn


def parse_url(url: str) -> Target:
    """The target of a `mariadb://` or `mysql://` URL; a clear error that never quotes it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _malformed("its host or port cannot be read") from None
    scheme = parts.scheme.lower().split("+", 1)[0]
    if scheme not in SCHEMES:
        raise _malformed("it does not start with mariadb:// or mysql://")
    if parts.fragment:
        raise _malformed("it has a #fragment")
    return Target(
        scheme=scheme,
        host=parts.hostname or "localhost",
        port=port or DEFAULT_PORT,
        user=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        database=_database(parts.path),
        options=_options(parts.query),
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
    conn = MariaDBConnection(raw, target)
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


def _database(path: str) -> str:
    name = unquote(path[1:] if path.startswith("/") else path)
    if "/" in name:
        raise _malformed("its path holds more than a database name")
    return name


def _options(query: str) -> tuple[tuple[str, str | bool], ...]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _malformed("its query string cannot be read") from None
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise _malformed("an option appears twice in its query string")
    return tuple((name, _option(name, value)) for name, value in pairs)


def _option(name: str, value: str) -> str | bool:
    if name in _TEXT_OPTIONS:
        return value
    if name in _FLAG_OPTIONS and value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    if name in _FLAG_OPTIONS:
        raise _malformed(f"the option {name} must be true or false")
    known = ", ".join(_TEXT_OPTIONS + _FLAG_OPTIONS)
    raise _malformed(f"its query string has an unknown option (known: {known})")


def _option_text(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(value, safe="/")


def _malformed(reason: str) -> DatabaseError:
    return DatabaseError(f"database_url is not a valid MariaDB/MySQL URL: {reason}", hint=_EXAMPLE)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
