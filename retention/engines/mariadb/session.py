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

`Session` is the engine's session concern (retention/engines/session.py): settings "for the
transaction" are session variables set and put back when the transaction ends (MariaDB has no
`SET LOCAL`), `pinned`/`pin` for helper connections, and the demo's fresh database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import psycopg
from psycopg.pq import TransactionStatus

from retention.engines import sql
from retention.engines.mariadb.errors import forget_frames, is_lost
from retention.engines.mariadb.flavour import detect
from retention.engines.mariadb.grantee import CURRENT_GRANTEE
from retention.engines.mariadb.target import parse_url
from retention.engines.session import Account
from retention.errors import DatabaseError
from retention.settings import Settings

if TYPE_CHECKING:
    from retention.engines import Connection
    from retention.engines.mariadb.connection import MariaDBConnection

# what `connect` pins and helper connections copy from the run's (`Session.pinned`); the
# character set and the isolation level are pinned at connect and never change after
_PINNED = ("time_zone", "sql_mode")
_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]*\.[0-9]+")
_COLLATION = "utf8mb4_unicode_ci"  # a new database's (the demo's): MariaDB 10.6+ and MySQL 8
# the largest values the server takes: InnoDB reads its own as "wait without limit"
_NO_ROW_LOCK_LIMIT = 100_000_000
_NO_LOCK_LIMIT = 31_536_000  # lock_wait_timeout (metadata locks): a year, its maximum
# a subject's share of an in-memory temporary table when a whole-table statement groups a child
# table by subject (the key, the aggregate, its flag, and the HEAP engine's row and hash
# overhead), about one and a half times what was measured: under the default 16 MB, the
# aggregates of 380,000 patients stayed in memory, those of 760,000 did not (the clock of
# 758,912 patients in one statement: 54.9 s; in two: 14.1 s; in three: 14.6 s)
GROUP_BYTES = 64
MIN_SLICE = 10_000  # fewer subjects per statement: more statements than the aggregates save
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


def _json_text(value: bytes | str | None) -> str | None:
    """A MySQL JSON value as text (always utf8mb4 there)."""
    return value.decode("utf-8") if isinstance(value, bytes | bytearray) else value


def connect(settings: Settings, *, url: str | None = None) -> MariaDBConnection:
    """Open an autocommit connection with the session pinned (module docstring)."""
    target = parse_url(url or settings.require_database_url())
    driver = load_driver()
    from mariadb.constants import CLIENT, FIELD_TYPE

    from retention.engines.mariadb.connection import MariaDBConnection

    try:
        raw = driver.connect(
            **target.driver_kwargs(),
            connect_timeout=settings.connect_timeout,
            client_flag=CLIENT.FOUND_ROWS,
            autocommit=True,
            local_infile=False,
            # MySQL's JSON type (MariaDB's is LONGTEXT) comes as bytes: its text, as MariaDB's
            converter={FIELD_TYPE.JSON: _json_text},
        )
    except driver.Error as exc:
        forget_frames(exc)  # the driver leaks its errors: not the frames too (errors.translate)
        raise DatabaseError(
            f"cannot connect to the database: {_first_line(exc)}",
            hint="check database_url, that the server runs, and that the account may connect "
            "from this host",
        ) from None
    conn = MariaDBConnection(raw, target, timezone=settings.timezone)
    _pin(conn)
    if target.asks_for_tls:
        _require_tls(conn)
    try:
        conn.flavour = detect(conn)
    except DatabaseError:
        conn.close()
        raise
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


def _require_tls(conn: MariaDBConnection) -> None:
    """A URL asking for TLS (`ssl=true`, a CA, a certificate) gets an encrypted connection or
    none: the driver falls back to plain text when the server has no TLS (an outside review,
    `have_ssl=DISABLED`: `?ssl=true` connected unencrypted, without a word). Checked before
    any statement that reads or writes data (only the session's settings come first)."""
    row = conn.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'").fetchone()
    if row is None or not row[1]:
        conn.close()
        raise DatabaseError(
            "database_url asks for TLS, but the server did not encrypt this connection",
            hint="enable TLS on the server (ssl_cert and ssl_key in its configuration; "
            "`SHOW VARIABLES LIKE 'have_ssl'` says YES); add ssl_verify_cert=true to check "
            "its certificate too",
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _connection(conn: Connection) -> MariaDBConnection:
    from retention.engines.mariadb.connection import MariaDBConnection

    assert isinstance(conn, MariaDBConnection)
    return conn


def _typed(value: str) -> object:
    if _INTEGER.fullmatch(value):
        return int(value)
    if _DECIMAL.fullmatch(value):
        return Decimal(value)
    return value


def _lock_seconds(ms: int) -> int:
    """A lock wait bound in whole seconds (the server takes no fraction), rounded up: a
    2,500 ms timeout waits 3 s, never less than asked (0: without limit)."""
    return math.ceil(ms / 1000) if ms > 0 else 0


class Session:
    """ "For the transaction" is the connection's `set_for_transaction`: MariaDB has no
    transaction-local settings (`SET STATEMENT` covers one statement), so the session's values
    are set and put back when the outermost `with conn.transaction():` block ends, whether it
    commits or rolls back (docs/ENGINES.md, 2.1 and 2.7)."""

    def batch_limits(
        self, conn: Connection, *, lock_timeout_ms: int, statement_timeout_ms: int
    ) -> None:
        """Row lock waits (`innodb_lock_wait_timeout`) and metadata lock waits
        (`lock_wait_timeout`: PostgreSQL's lock_timeout covers table locks too) in whole
        seconds, rounded up; each statement's time (`max_statement_time`, seconds, any
        statement, DML included; 0: no limit, as PostgreSQL's 0). No planner settings
        (PostgreSQL's are its own planner's; none was measured as needed here). MySQL 8 has
        no `max_statement_time`: its `max_execution_time` (milliseconds) bounds SELECTs only
        (capability `statement_time_on_dml`; flavour.py; designed for, not tested)."""
        flavour = _connection(conn).flavour
        self._lock_limits(conn, lock_timeout_ms, **flavour.statement_time(statement_timeout_ms))

    def autocommit_limits(
        self, conn: Connection, *, lock_timeout_ms: int, statement_timeout_ms: int
    ) -> None:
        """Table lock waits too (`lock_wait_timeout`: MyISAM's and Aria's, which the aside
        connection changes, lock whole tables)."""
        seconds = _lock_seconds(lock_timeout_ms)
        values = {
            "innodb_lock_wait_timeout": seconds or _NO_ROW_LOCK_LIMIT,
            "lock_wait_timeout": seconds or _NO_LOCK_LIMIT,
            **_connection(conn).flavour.statement_time(statement_timeout_ms),
        }
        conn.execute(
            "SET " + ", ".join(f"SESSION {name} = %s" for name in values), list(values.values())
        )

    def lock_timeout(self, conn: Connection, ms: int) -> None:
        self._lock_limits(conn, ms)

    def _lock_limits(self, conn: Connection, ms: int, **more: object) -> None:
        seconds = _lock_seconds(ms)
        _connection(conn).set_for_transaction(
            {
                "innodb_lock_wait_timeout": seconds or _NO_ROW_LOCK_LIMIT,
                "lock_wait_timeout": seconds or _NO_LOCK_LIMIT,
                **more,
            }
        )

    def whole_tables(self, conn: Connection, work_mem_mb: int) -> None:
        """A no-op. `work_mem_mb` has no equivalent: `sort_buffer_size` is taken whole by
        every sort of every session (raising it slows small sorts down, the manual warns), and
        in-memory temporary tables are capped by `tmp_table_size` and `max_heap_table_size`
        together; these are the DBA's, set for the server. Where the clock is sliced (helper
        connections, setting `workers`), the size of what a statement aggregates is bounded
        by the slices instead (`slice_bound`); otherwise split materialisation stays on."""

    def slice_bound(self, conn: Connection) -> int | None:
        """The subjects whose aggregates fit in one in-memory temporary table: the smaller of
        `tmp_table_size` and `max_heap_table_size` over GROUP_BYTES a subject (16 MB by
        default: 262,144 subjects), at least MIN_SLICE. None on MySQL, whose derived tables
        are not split per subject (nothing to turn off) and whose TempTable engine has limits
        of its own."""
        if _connection(conn).flavour.server != "mariadb":
            return None
        row = conn.execute("SELECT LEAST(@@tmp_table_size, @@max_heap_table_size)").fetchone()
        return max(MIN_SLICE, int(row[0]) // GROUP_BYTES if row and row[0] else 0)

    def grouped_at_once(self, conn: Connection, statement: sql.Composed) -> sql.Composed:
        """Split materialisation off for that statement only (`SET STATEMENT ... FOR`): a child
        table's aggregate (the last stay of each patient) is otherwise computed by a lookup and
        a sort per subject (LATERAL DERIVED), which suits a batch's few thousand keys (its
        locked re-check: 60 ms for 2,000 patients with it, 850 ms without). Over a whole slice,
        one grouped pass is faster: the clock of 189,728 patients in two slices of 95,000,
        1.31 s a slice against 1.75 s; of 758,912 in two slices of 380,000, 14.1 s against
        22.3 s (one connection, idle server). Past `slice_bound` the aggregates spill to
        on-disk temporary tables (one slice of 760,000: 54.9 s). MySQL: the statement as it
        is."""
        if _connection(conn).flavour.server != "mariadb":
            return statement
        return sql.SQL("SET STATEMENT optimizer_switch = 'split_materialized=off' FOR {}").format(
            statement
        )

    def transaction_settings(self, conn: Connection, settings: Mapping[str, str]) -> None:
        """Server variables by their names, set for the session and put back when the
        transaction ends (class docstring). A value written as a number is sent as one: the
        server refuses text for a numeric variable (error 1232)."""
        if settings:
            _connection(conn).set_for_transaction(
                {name: _typed(value) for name, value in settings.items()}
            )

    def in_transaction(self, conn: Connection) -> bool:
        """The connection's transaction status: the server's flag, a failed block, or a
        stream being read (see `MariaDBConnection`)."""
        return bool(conn.info.transaction_status != TransactionStatus.IDLE)

    def pinned(self, conn: Connection) -> dict[str, str]:
        """`time_zone` and `sql_mode` as they are now (the character set and isolation level
        are pinned by `connect` on every connection alike)."""
        columns = ", ".join(f"@@SESSION.{name}" for name in _PINNED)
        row = conn.execute(f"SELECT {columns}").fetchone()
        assert row is not None
        return {name: str(value) for name, value in zip(_PINNED, row, strict=True)}

    def pin(self, conn: Connection, settings: Mapping[str, str]) -> None:
        for name in settings:
            if name not in _PINNED:
                raise psycopg.ProgrammingError(f"{name!r} is not a setting a session pins")
        if settings:
            conn.execute(
                "SET " + ", ".join(f"SESSION {name} = %s" for name in settings),
                list(settings.values()),
            )

    def fresh_database(self, admin_url: str, name: str) -> str:
        """Drop `name` and create it again, empty, in utf8mb4 (the demonstration's database;
        MariaDB has no DROP ... FORCE: the DROP waits for sessions using it to finish their
        transactions). The server is reached without a default database: the URL may name
        the demonstration's own, which need not exist yet."""
        with connect(Settings(), url=database_url(admin_url, "")) as admin:
            ident = sql.Identifier(name)
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(ident))
            admin.execute(
                sql.SQL("CREATE DATABASE {} CHARACTER SET utf8mb4 COLLATE {}").format(
                    ident, sql.SQL(_COLLATION)
                )
            )
        return database_url(admin_url, name)

    def account(self, conn: Connection) -> Account:
        """A superuser here: the SUPER privilege (it may create or drop triggers anywhere), or
        DROP and TRIGGER on every database (`GRANT ALL ON *.*`)."""
        row = conn.execute(
            "SELECT CURRENT_USER(), (SELECT GROUP_CONCAT(PRIVILEGE_TYPE) "
            f"FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {CURRENT_GRANTEE})"
        ).fetchone()
        if row is None:
            return Account("", False)
        granted = set(str(row[1] or "").split(","))
        return Account(str(row[0]), "SUPER" in granted or {"DROP", "TRIGGER"} <= granted)

    def server_epoch(self, conn: Connection) -> float:
        # SYSDATE: the time now (NOW is the statement's start); the session's zone is UTC
        row = conn.execute("SELECT UNIX_TIMESTAMP(SYSDATE(6))").fetchone()
        assert row is not None
        return float(row[0])

    def identity(self, conn: Connection) -> tuple[Any, ...]:
        row = conn.execute(
            "SELECT DATABASE(), @@hostname, @@port, @@datadir, @@server_id"
        ).fetchone()
        return tuple(row) if row else ()


def database_url(url: str, database: str) -> str:
    """The same server and account as the `mariadb://` URL, another default database."""
    parts = urlsplit(url)
    return parts._replace(path="/" + quote(database, safe="")).geturl()
