"""Cursors over MariaDB Connector/Python: psycopg's cursor API on the driver's binary protocol.

Every statement runs as a server-side prepared statement (the driver's binary protocol): the
values travel apart from the SQL text (never escaped into it), the server's messages quote `?`
rather than a value, and a zero date raises instead of reading as NULL (the driver's text
protocol turns `0000-00-00` into None, which would look like a missing date). A value the
driver cannot convert is a clear `DatetimeFieldOverflow`: select such columns as
`CAST(column AS CHAR)` (docs/ENGINES.md, 2.4).

A cursor holds its result on the client (buffered) unless it has a name, like psycopg's
server-side cursors: then rows stream (flat memory) and the connection can run nothing else
until they are read or the cursor is closed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Self

import psycopg
from psycopg import rows

from retention.engines import sql
from retention.engines.mariadb.errors import quietly, unreadable_value
from retention.engines.mariadb.render import Params, bind, check, render

if TYPE_CHECKING:
    from retention.engines.mariadb.flavour import Flavour

ITER_ROWS = 1_000  # rows a streaming cursor's iteration reads per call into the driver
# the driver raises these (not a mariadb.Error) when it cannot build a Python value
_CONVERSION_ERRORS = (SystemError, ValueError, OverflowError)
# the field types TIMESTAMP, DATE, TIME, DATETIME, NEWDATE, TIMESTAMP2, DATETIME2, TIME2
# (mariadb.constants.FIELD_TYPE)
_TEMPORAL = frozenset({7, 10, 11, 12, 14, 17, 18, 19})
_TEXT_DATES = (
    "a statement run with prepare=False (the driver's text protocol) cannot return dates: that "
    "protocol reads a zero date as NULL; run it prepared, or select CAST(column AS CHAR)"
)


# What MySQL cannot prepare (its manual, "SQL Syntax Permitted in Prepared Statements";
# MariaDB prepares them all): run in the text protocol there, as `prepare=False` asks
_UNPREPARABLE = re.compile(
    r"\s*(?:(?:CREATE|DROP)\s+(?:DEFINER\s*=\s*\S+\s+)?(?:TRIGGER|PROCEDURE|FUNCTION|EVENT)"
    r"|(?:CREATE|DROP)\s+ROLE|SET\s+(?:DEFAULT\s+)?ROLE|(?:LOCK|UNLOCK)\s+TABLES?"
    r"|SIGNAL|RESIGNAL|XA)\b",
    re.IGNORECASE,
)


def unpreparable(text: str) -> bool:
    """A statement MySQL refuses to prepare (error 1295)."""
    return _UNPREPARABLE.match(text) is not None


class Owner(Protocol):
    """What a cursor needs from its connection (`connection.MariaDBConnection`)."""

    flavour: Flavour

    @property
    def closed(self) -> bool: ...
    def _driver_cursor(self, *, streaming: bool, prepared: bool) -> Any: ...
    def _statement(self, text: str | None) -> AbstractContextManager[None]: ...
    def _stream_started(self, cursor: MariaDBCursor) -> None: ...
    def _stream_ended(self, cursor: MariaDBCursor) -> None: ...
    def _close_cursor(self, raw: Any) -> None: ...


class Column(NamedTuple):
    """A column of a result, as DB-API's description and psycopg's `Column` (`.name`)."""

    name: str
    type_code: int
    display_size: int | None
    internal_size: int | None
    precision: int | None
    scale: int | None
    null_ok: bool | None


RowMaker = Callable[[Sequence[str], tuple[Any, ...]], Any]


def _tuple_row(names: Sequence[str], values: tuple[Any, ...]) -> Any:
    return values


def _dict_row(names: Sequence[str], values: tuple[Any, ...]) -> Any:
    return dict(zip(names, values, strict=True))


def row_maker(row_factory: Any) -> RowMaker:
    """psycopg's `tuple_row` (the default) and `dict_row`, the two the tool uses."""
    if row_factory is None or row_factory is rows.tuple_row:
        return _tuple_row
    if row_factory is rows.dict_row:
        return _dict_row
    raise psycopg.NotSupportedError(
        f"row_factory {getattr(row_factory, '__name__', row_factory)!r} is not supported on "
        "MariaDB: use psycopg.rows.tuple_row or psycopg.rows.dict_row"
    )


@contextmanager
def _closed_on_error(raw: Any) -> Iterator[None]:
    """A driver cursor whose statement failed is closed at once (its prepared statement with it)."""
    try:
        yield
    except BaseException:
        quietly(raw.close, Exception)
        raise


class MariaDBCursor:
    """psycopg's cursor API: execute, executemany, fetch*, iteration, description, rowcount."""

    def __init__(self, conn: Owner, *, row_factory: Any = None, streaming: bool = False) -> None:
        self.connection = conn
        self._make = row_maker(row_factory)
        self._streaming = streaming
        self._raw: Any = None
        self._description: list[Column] | None = None
        self._names: list[str] = []
        self._rowcount = -1
        self._read = 0
        self.closed = False

    # -- statements ------------------------------------------------------------------------------

    def execute(
        self,
        query: sql.Composable | str,
        params: Params | None = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        """Run one statement as a prepared statement (`binary` is accepted for psycopg's API).

        `prepare=False` runs it in the driver's text protocol instead, for the statements the
        server cannot prepare with parameters (`CREATE USER ... IDENTIFIED BY %s`, `SIGNAL ...
        MESSAGE_TEXT = %s`, DDL defaults): the driver then escapes the values into the text
        (safe with the pinned sql_mode and character set), and a result holding dates is
        refused, as that protocol reads a zero date as NULL."""
        self._check_open()
        self._release()
        rendered = render(query, params)
        values = bind(rendered, params)
        prepared = prepare is not False and not (
            self.connection.flavour.server == "mysql" and unpreparable(rendered.text)
        )
        raw = self.connection._driver_cursor(streaming=self._streaming, prepared=prepared)
        with self.connection._statement(rendered.text):
            with _closed_on_error(raw):
                raw.execute(rendered.text, values)
            self._take(raw)
        if not prepared and self._has_dates():
            self._release()
            raise psycopg.NotSupportedError(_TEXT_DATES)
        return self

    def executemany(self, query: sql.Composable | str, params_seq: Iterable[Params]) -> None:
        """One statement, many parameter sets: MariaDB's bulk protocol (values never in text);
        `rowcount` is the total."""
        self._check_open()
        self._release()
        batch = list(params_seq)
        if not batch:
            self._rowcount = 0
            return
        rendered = render(query, batch[0])
        values = [bind(rendered, check(rendered, params)) for params in batch]
        raw = self.connection._driver_cursor(streaming=False, prepared=True)
        with self.connection._statement(rendered.text):
            with _closed_on_error(raw):
                raw.executemany(rendered.text, values)
            self._rowcount = raw.rowcount
            raw.close()

    def copy(self, *args: Any, **kwargs: Any) -> Any:
        raise psycopg.NotSupportedError(
            "COPY is PostgreSQL's: on MariaDB read with a named (streaming) cursor and write "
            "with executemany"
        )

    # -- results ---------------------------------------------------------------------------------

    @property
    def description(self) -> list[Column] | None:
        return self._description

    @property
    def rowcount(self) -> int:
        """Rows matched by an UPDATE or DELETE (not only changed: FOUND_ROWS), inserted, or
        returned (for a streaming cursor: read so far)."""
        return self._read if self._streaming and self._description else self._rowcount

    def fetchone(self) -> Any:
        got = self._fetch(lambda raw: raw.fetchone(), None)
        if got is None:
            self._release()
            return None
        self._read += 1
        return self._make(self._names, got)

    def fetchmany(self, size: int = 0) -> list[Any]:
        got = self._fetch(lambda raw: raw.fetchmany(size or 1), [])
        if len(got) < (size or 1):
            self._release()
        return self._made(got)

    def fetchall(self) -> list[Any]:
        got = self._fetch(lambda raw: raw.fetchall(), [])
        self._release()
        return self._made(got)

    def __iter__(self) -> Iterator[Any]:
        """The rows, read ITER_ROWS at a time (one call into the driver and one pass through
        the connection's lock per chunk, not per row: 7 us a row otherwise, measured)."""
        while True:
            rows = self.fetchmany(ITER_ROWS)
            yield from rows
            if len(rows) < ITER_ROWS:  # the last: the driver's cursor is released already
                return

    # -- lifetime --------------------------------------------------------------------------------

    def close(self) -> None:
        self._release()
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise psycopg.InterfaceError("the cursor is closed")

    def _take(self, raw: Any) -> None:
        """Keep the driver's cursor while it holds rows; close it at once otherwise."""
        self._rowcount = raw.rowcount
        self._read = 0
        if raw.description is None:
            self._description = None
            raw.close()
            return
        self._description = [Column(*column[:7]) for column in raw.description]
        self._names = [column.name for column in self._description]
        self._raw = raw
        if self._streaming:
            self.connection._stream_started(self)

    def _has_dates(self) -> bool:
        return any(column.type_code in _TEMPORAL for column in self._description or ())

    def _fetch(self, how: Callable[[Any], Any], exhausted: Any) -> Any:
        if self._description is None:
            raise psycopg.ProgrammingError("the last operation didn't produce a result")
        if self._raw is None:
            return exhausted
        try:
            with self.connection._statement(None):
                got = how(self._raw)
        except _CONVERSION_ERRORS:
            # the driver raises SystemError, or ValueError, sometimes only once back in Python
            # code (the exception left pending by its C code): the whole block is guarded
            self._abandon()
            raise unreadable_value() from None
        except BaseException:
            self._abandon()  # the result is lost: the connection must not stay held by it
            raise
        return got

    def _made(self, got: Iterable[tuple[Any, ...]] | None) -> list[Any]:
        made = [self._make(self._names, values) for values in got or ()]
        self._read += len(made)
        return made

    def _abandon(self) -> None:
        with suppress(Exception):
            self._release()
        self._raw = None
        self.connection._stream_ended(self)

    def _release(self) -> None:
        """Close the driver's cursor: frees the server's prepared statement and, for a streaming
        cursor, the connection."""
        raw, self._raw = self._raw, None
        if raw is None:
            return
        self.connection._stream_ended(self)
        self.connection._close_cursor(raw)
