"""A MariaDB connection with psycopg's API: what `retention.engines.Connection` asks for.

Transactions follow PostgreSQL's rules, which the tool's callers rely on, rather than MariaDB's:

- `with conn.transaction():` opens `START TRANSACTION` (a `SAVEPOINT` when nested) and ends it
  with `COMMIT`, or with an explicit `ROLLBACK` on **any** exception: MariaDB rolls back only
  the statement that failed (a lock wait timeout leaves the transaction open with the earlier
  statements' changes) and would commit the rest;
- after a statement fails inside a transaction, the transaction is *aborted*, as in
  PostgreSQL: every further statement raises `InFailedSqlTransaction` until `ROLLBACK` (or
  `ROLLBACK TO SAVEPOINT`), and a block that swallowed the error and ends normally is rolled
  back, never committed. After a deadlock the server has already rolled everything back: the
  rest of the block must not run in autocommit, and does not.

`cancel_safe()` sends `KILL QUERY <connection id>` from a second, short-lived connection (no
cancel request exists in MariaDB's protocol; one's own connections need no privilege).

Threads: one driver call at a time on a connection (a lock, as psycopg's), and `close()` never
frees the driver's handle under a call running in another thread: MariaDB Connector/Python
would free it under the call (the process dies, SIGSEGV). Closed while a statement of another
thread runs, the connection refuses anything new at once, and that thread closes the handle as
its statement ends (`cancel_safe()`, even then, ends it sooner). While a statement of another
thread runs, `info.transaction_status` says ACTIVE without waiting for it. Every driver cursor
is kept reachable until nothing else holds it (`keeper.py`: the garbage collector must never
free one).
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from zoneinfo import ZoneInfo

import mariadb
import psycopg
from psycopg import errors as pg
from psycopg.pq import TransactionStatus

from retention.engines import sql
from retention.engines.mariadb.cursor import MariaDBCursor
from retention.engines.mariadb.errors import (
    errno_of,
    forget_frames,
    is_lost,
    is_server_error,
    quietly,
    translate,
)
from retention.engines.mariadb.flavour import MARIADB
from retention.engines.mariadb.keeper import Cursors
from retention.engines.mariadb.render import Params, render

if TYPE_CHECKING:
    from retention.engines.mariadb.target import Target

_VARIABLE = re.compile(r"[a-z_][a-z0-9_]*")
_ROLLBACK = re.compile(r"\s*ROLLBACK\b", re.IGNORECASE)
_SERVER_STATUS_IN_TRANS = 1
_UNKNOWN_THREAD = 1094  # KILL QUERY: the connection is gone already
_ABORTED = "current transaction is aborted, commands ignored until end of transaction block"


class Transaction:
    """One `with conn.transaction():` block (psycopg's `Transaction`)."""

    def __init__(
        self,
        conn: MariaDBConnection,
        savepoint_name: str | None,
        force_rollback: bool,
        start: tuple[str, ...] = ("START TRANSACTION",),
    ) -> None:
        self.connection = conn
        self.savepoint_name = savepoint_name
        self.force_rollback = force_rollback
        self.start = start  # the statements opening it (an outer transaction only)
        self.outer = False

    def __enter__(self) -> Self:
        self.connection._enter(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool:
        return self.connection._exit(self, exc_val)


class ConnectionInfo:
    """psycopg's `conn.info`, the parts the tool reads; `dsn` never holds the password."""

    encoding = "utf-8"

    def __init__(self, conn: MariaDBConnection) -> None:
        self._conn = conn

    @property
    def dbname(self) -> str:
        return self._conn.target.database

    @property
    def host(self) -> str:
        return self._conn.target.host

    @property
    def port(self) -> int:
        return self._conn.target.port

    @property
    def user(self) -> str | None:
        return self._conn.target.user

    @property
    def dsn(self) -> str:
        return self._conn.target.dsn()

    @property
    def backend_pid(self) -> int:
        return self._conn.session_id

    @property
    def server_version(self) -> int:
        return self._conn.server_version

    @property
    def transaction_status(self) -> TransactionStatus:
        return self._conn._transaction_status()

    @property
    def timezone(self) -> ZoneInfo:
        """The legal calendar's zone the tool reads dates in (psycopg gives the session's
        TimeZone, pinned to it on PostgreSQL; a MariaDB session runs in UTC, and the clock
        converts TIMESTAMPs to this zone itself, see engines/mariadb/clock.py)."""
        return ZoneInfo(self._conn.timezone)

    def parameter_status(self, name: str) -> str | None:
        """PostgreSQL's server parameters; MariaDB reports none of them (None)."""
        return None


class MariaDBConnection:
    """An autocommit MariaDB session behind psycopg's connection API (module docstring)."""

    def __init__(self, raw: Any, target: Target, timezone: str = "UTC") -> None:
        self.target = target
        self.timezone = timezone  # settings.timezone: the legal calendar's zone
        self._raw = raw
        self.session_id: int = raw.connection_id
        self.server_version: int = raw.server_version
        self.flavour = MARIADB  # the server's, read by `session.connect` (flavour.py)
        self._closed = False
        self._broken = False
        self._failed = False
        self._stack: list[Transaction] = []
        # session variables changed "for the transaction" (`set_for_transaction`) -> their
        # values before, set back when the outermost transaction block ends
        self._restore: dict[str, Any] = {}
        self._lock = threading.RLock()  # held by the thread calling into the driver
        self._handle_open = True  # the driver's connection: closed by whoever holds the lock
        self._cursors = Cursors()
        # the named cursor whose rows are being read; weak: a cursor dropped unread frees the
        # connection (the driver reads the rest of its result away)
        self._stream: weakref.ref[MariaDBCursor] | None = None

    # -- psycopg's API ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def broken(self) -> bool:
        return self._broken

    @property
    def info(self) -> ConnectionInfo:
        return ConnectionInfo(self)

    def execute(
        self,
        query: sql.SQL | sql.Composed | str,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool = False,
    ) -> MariaDBCursor:
        return self.cursor().execute(query, params, prepare=prepare, binary=binary)

    def cursor(
        self, name: str = "", *, row_factory: Any = None, binary: bool = False
    ) -> MariaDBCursor:
        """A cursor; a named one streams its rows (psycopg's server-side cursor)."""
        return MariaDBCursor(self, row_factory=row_factory, streaming=bool(name))

    def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> Transaction:
        return Transaction(self, savepoint_name, force_rollback)

    def set_for_transaction(self, values: Mapping[str, object]) -> None:
        """Set session variables until the outermost `with conn.transaction():` block ends,
        then set them back (MariaDB has no transaction-local settings: `SET STATEMENT` covers
        one statement only). Names are the server's variable names; values are parameters."""
        if not any(tx.outer for tx in self._stack):
            raise psycopg.ProgrammingError(
                "session settings for a transaction need `with conn.transaction():` around "
                "them (outside one they would outlive it)"
            )
        for name in values:
            if not _VARIABLE.fullmatch(name):
                raise psycopg.ProgrammingError(f"{name!r} is not a server variable's name")
        new = [name for name in values if name not in self._restore]
        if new:
            columns = ", ".join(f"@@SESSION.{name}" for name in new)
            row = self.execute(f"SELECT {columns}").fetchone()
            assert row is not None
            self._restore.update(zip(new, row, strict=True))
        self._set_session(values)

    def _set_session(self, values: Mapping[str, object]) -> None:
        if values:
            assignments = ", ".join(f"SESSION {name} = %s" for name in values)
            self.execute(f"SET {assignments}", list(values.values()))

    def _restore_session(self, *, quiet: bool) -> None:
        """The variables `set_for_transaction` changed, as they were (nothing to do on a
        closed connection: the session went with them)."""
        saved, self._restore = self._restore, {}
        if not saved or self._closed:
            return
        try:
            self._set_session(saved)
        except psycopg.Error:
            if not quiet:
                raise

    def snapshot_transaction(self, *, read_only: bool) -> Transaction:
        """A transaction reading one snapshot from its start: REPEATABLE READ, set for the next
        transaction only (the session's level stays READ COMMITTED), then `START TRANSACTION
        WITH CONSISTENT SNAPSHOT` (InnoDB takes the snapshot now, not at the first read).
        Refused within another transaction, whose snapshot and isolation are already set."""
        access = "READ ONLY" if read_only else "READ WRITE"
        return Transaction(
            self,
            None,
            False,
            (
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                f"START TRANSACTION WITH CONSISTENT SNAPSHOT, {access}",
            ),
        )

    def cancel_safe(self, *, timeout: float = 30.0) -> None:
        """Stop the statement running on this connection, from another connection."""
        if not self._handle_open:  # closed, and no statement of another thread runs
            return
        options = {**self.target.driver_kwargs(), "connect_timeout": max(1, round(timeout))}
        options.pop("database", None)
        try:
            killer = mariadb.connect(**options)
        except mariadb.Error as exc:
            raise translate(exc) from None
        cursors = Cursors()
        try:
            cursors.make(killer.cursor).execute(f"KILL QUERY {int(self.session_id)}")
        except mariadb.Error as exc:
            error = translate(exc)
            if errno_of(error) != _UNKNOWN_THREAD:
                raise error from None
        finally:
            cursors.close(killer, mariadb.Error)

    def close(self) -> None:
        """Nothing new runs from now on; the driver's handle is closed now, or by the thread
        whose driver call is running as it ends (module docstring)."""
        if self._closed:
            return
        self._closed = True
        self._stream = None
        self._close_handle()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- for the cursors -------------------------------------------------------------------------

    def _driver_cursor(self, *, streaming: bool, prepared: bool) -> Any:
        """A driver cursor, kept (`keeper.py`); the ones no longer used are freed first (an
        unread streaming result is read away)."""
        with self._driver():
            return self._cursors.make(
                lambda: self._raw.cursor(binary=prepared, buffered=not streaming)
            )

    @contextmanager
    def _statement(self, text: str | None) -> Iterator[None]:
        """Around a call into the driver: `text` for a new statement (None to read a result);
        driver errors translated; the transaction aborted by a server error."""
        with self._driver():
            if text is not None:
                self._check_ready(text)
            in_transaction = bool(self._stack) or self._in_transaction()
            try:
                yield
            except mariadb.Error as exc:
                raise self._failure(exc, in_transaction) from None
            if text is not None and _ROLLBACK.match(text):
                self._failed = False

    def _close_cursor(self, raw: Any) -> None:
        """Close a driver cursor: frees its prepared statement (and the connection, read to the
        end, for a streaming one); nothing to do once the connection is closed (its cursors are
        closed with it)."""
        if self._closed:  # no wait for a statement of another thread
            return
        with self._held() as usable:
            if not usable:
                return
            try:
                raw.close()
            except mariadb.Error as exc:
                raise self._failure(exc, bool(self._stack)) from None

    @contextmanager
    def _driver(self) -> Iterator[None]:
        """The driver's connection for this thread alone; refused once closed."""
        self._check_open()  # at once, without waiting for a statement of another thread
        with self._held() as usable:
            if not usable:
                raise psycopg.OperationalError("the connection is closed")
            yield

    @contextmanager
    def _held(self) -> Iterator[bool]:
        """The lock around driver calls, and whether the connection is still open; as the lock
        is released, the handle is closed if `close()` came meanwhile from another thread."""
        try:
            with self._lock:
                yield not self._closed
        finally:
            if self._closed:
                self._close_handle()

    def _close_handle(self) -> None:
        """Close the driver's connection, unless a driver call runs on it in another thread:
        then that thread does, as its call ends (`_driver`, after `_closed` is set)."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._handle_open:
                self._handle_open = False
                # the server may be gone already: nothing to close then
                self._cursors.close(self._raw, mariadb.Error)
        finally:
            self._lock.release()

    def _stream_started(self, cursor: MariaDBCursor) -> None:
        self._stream = weakref.ref(cursor)

    def _stream_ended(self, cursor: MariaDBCursor) -> None:
        if self._streaming() is cursor:
            self._stream = None

    def _streaming(self) -> MariaDBCursor | None:
        return self._stream() if self._stream is not None else None

    # -- transactions ----------------------------------------------------------------------------

    def _enter(self, tx: Transaction) -> None:
        self._check_open()
        if self._failed:
            raise pg.InFailedSqlTransaction(_ABORTED)
        tx.outer = not self._stack and not self._in_transaction()
        if not tx.outer and tx.start != ("START TRANSACTION",):
            raise psycopg.ProgrammingError(
                "a snapshot transaction cannot begin within another transaction"
            )
        if tx.outer:
            for statement in tx.start:
                self._control(statement)
        if not tx.outer or tx.savepoint_name is not None:
            tx.savepoint_name = tx.savepoint_name or f"_rt_savepoint_{len(self._stack) + 1}"
            self._savepoint("SAVEPOINT {}", tx)
        self._stack.append(tx)

    def _exit(self, tx: Transaction, exc: BaseException | None) -> bool:
        # a stream still being read ends with its block, as psycopg's named cursors (WITHOUT
        # HOLD) do: otherwise the connection would refuse the COMMIT or ROLLBACK, and the
        # transaction would stay open (a later implicit commit would keep its changes)
        self._end_stream()
        failed = self._failed
        ended = False
        try:
            if exc is None and not tx.force_rollback and not failed:
                try:
                    self._commit(tx)
                except BaseException:
                    self._rollback(tx, quiet=True)  # never left open after a failed COMMIT
                    raise
                ended = True
                return False
            self._rollback(tx, quiet=exc is not None)
            ended = True
        finally:
            self._stack.remove(tx)
            if tx.outer:  # an error on its way is not hidden by the restore's
                self._restore_session(quiet=not ended or exc is not None or failed)
        if exc is None and failed:
            raise pg.InFailedSqlTransaction(
                "a statement of this transaction failed: it was rolled back, not committed"
            )
        return isinstance(exc, psycopg.Rollback) and getattr(exc, "transaction", None) in (
            None,
            tx,
        )

    def _commit(self, tx: Transaction) -> None:
        if tx.outer:
            self._control("COMMIT")
        else:
            self._savepoint("RELEASE SAVEPOINT {}", tx)

    def _rollback(self, tx: Transaction, *, quiet: bool) -> None:
        """ROLLBACK (TO SAVEPOINT); when an exception is on its way, a failure here (the
        connection is gone, the savepoint went with a deadlock) must not hide it."""
        try:
            if tx.outer:
                self._control("ROLLBACK")
            else:
                self._savepoint("ROLLBACK TO SAVEPOINT {}", tx)
                self._savepoint("RELEASE SAVEPOINT {}", tx)
        except psycopg.Error:
            # the block's changes must not outlive it: a session whose ROLLBACK failed is
            # closed (the server rolls back what a session leaves), never left in a
            # transaction that the next block would join and a later statement commit; a
            # savepoint's leaves the outer block aborted (rolled back, never committed)
            if tx.outer:
                self._broken = True
                self.close()
            else:
                self._failed = True
            if not quiet:
                raise

    def _end_stream(self) -> None:
        """Give up the rows of the stream being read, if any (the driver reads them away)."""
        stream = self._streaming()
        if stream is not None:
            stream._abandon()

    def _savepoint(self, statement: str, tx: Transaction) -> None:
        name = tx.savepoint_name or ""
        self._control(render(sql.SQL(statement).format(sql.Identifier(name)), None).text)

    def _control(self, text: str) -> None:
        cursor = self._driver_cursor(streaming=False, prepared=False)
        with self._statement(text):
            try:
                cursor.execute(text)
            finally:
                quietly(cursor.close, mariadb.Error)  # no result to free: nothing can fail

    # -- state -----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise psycopg.OperationalError("the connection is closed")

    def _check_ready(self, text: str) -> None:
        if self._streaming() is not None:
            raise psycopg.ProgrammingError(
                "a streaming (named) cursor is being read on this connection: read it to its "
                "end or close it before running another statement"
            )
        if self._failed and not _ROLLBACK.match(text):
            raise pg.InFailedSqlTransaction(_ABORTED)

    def _failure(self, exc: BaseException, in_transaction: bool) -> psycopg.Error:
        error = translate(exc)
        if is_lost(error):
            self._broken = True
            self.close()
        elif in_transaction and is_server_error(error):
            self._failed = True
        return error

    def _in_transaction(self) -> bool:
        with self._lock:
            if not self._handle_open:
                return False
            try:
                return bool(self._raw.server_status & _SERVER_STATUS_IN_TRANS)
            except mariadb.Error as exc:
                forget_frames(exc)
                return False

    def _transaction_status(self) -> TransactionStatus:
        if self._closed:
            return TransactionStatus.UNKNOWN
        if not self._lock.acquire(blocking=False):
            return TransactionStatus.ACTIVE  # a statement runs, in another thread
        try:
            if self._streaming() is not None:
                return TransactionStatus.ACTIVE
            if self._failed:
                return TransactionStatus.INERROR
            in_transaction = self._in_transaction()
        finally:
            self._lock.release()
        return TransactionStatus.INTRANS if in_transaction else TransactionStatus.IDLE
