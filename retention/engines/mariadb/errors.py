"""MariaDB driver errors translated into SQL's standard classes (`retention.engines.errors`).

MariaDB and MySQL classify errors by a number (errno); their SQLSTATE is often the generic
`HY000` (a lock wait timeout is `HY000`). The engine classifies by errno first, so that
`except errors.LockNotAvailable` means the same on every engine, then by the SQLSTATE's class,
then by the driver's own exception class. The translated error keeps the server's message as
it is (nothing added: no parameter, no value) in `str(exc)` and `diag.message_primary`;
`exc.sqlstate` is the class's PostgreSQL code where one is mapped (`55P03` for a lock wait
timeout: callers' tables of known conditions work unchanged), MariaDB's own SQLSTATE
otherwise; :func:`errno_of` and :func:`server_sqlstate_of` give MariaDB's originals.

Unmapped errors take the class of their SQLSTATE when it is a standard one (`21000`
cardinality violation), else of its class (`42S02`: a programming error), else the driver's.

`SIGNAL` (errno 1644: a trigger or a stored routine refused the statement) becomes the class
of the SQLSTATE the SIGNAL names when psycopg knows it, as PL/pgSQL's `RAISE ... USING
ERRCODE` does (the tool's own append-only triggers signal `42501`, insufficient privilege,
like their PostgreSQL twins), and `RaiseException` (`P0001`, what PostgreSQL raises for a
`RAISE EXCEPTION` without a code) for the usual `45000`: "refused by the database's own code",
which is neither a privilege problem nor a syntax error. Its text is written by whoever wrote
the trigger and may quote a row's values: the error carries a CONTEXT, which tells
`retention.errors.server_text_is_safe` not to show or keep it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress

import psycopg
from psycopg import errors as pg
from psycopg.pq import DiagnosticField

# errno -> the class of the same meaning (PostgreSQL's SQLSTATE in brackets)
_BY_ERRNO: dict[int, type[psycopg.Error]] = {
    1205: pg.LockNotAvailable,  # lock wait timeout (NOWAIT too) [55P03]
    3572: pg.LockNotAvailable,  # MySQL 8: NOWAIT found a lock
    1969: pg.QueryCanceled,  # max_statement_time exceeded [57014]
    3024: pg.QueryCanceled,  # MySQL 8: max_execution_time exceeded
    1317: pg.QueryCanceled,  # interrupted by KILL QUERY (cancel_safe)
    1213: pg.DeadlockDetected,  # the whole transaction was rolled back [40P01]
    1062: pg.UniqueViolation,  # duplicate entry [23505]
    1586: pg.UniqueViolation,
    1048: pg.NotNullViolation,  # [23502]
    1451: pg.ForeignKeyViolation,  # a child row refers to it [23503]
    1452: pg.ForeignKeyViolation,  # no parent row
    1142: pg.InsufficientPrivilege,  # table privilege [42501]
    1143: pg.InsufficientPrivilege,  # column privilege
    1044: pg.InsufficientPrivilege,  # database privilege
    1227: pg.InsufficientPrivilege,  # SUPER, PROCESS, ...
    1370: pg.InsufficientPrivilege,  # routine privilege
    1146: pg.UndefinedTable,  # [42P01]
    1050: pg.DuplicateTable,  # [42P07]
    1054: pg.UndefinedColumn,  # [42703]
    1064: pg.SyntaxError,  # [42601]
    1049: pg.InvalidCatalogName,  # unknown database [3D000]
    1406: pg.StringDataRightTruncation,  # data too long [22001]
    1264: pg.NumericValueOutOfRange,  # [22003]
    1292: pg.InvalidDatetimeFormat,  # incorrect date value [22007]
    1366: pg.InvalidTextRepresentation,  # incorrect value for a column [22P02]
    1365: pg.DivisionByZero,  # [22012]
    1053: pg.AdminShutdown,  # server shutdown in progress [57P01]
    2006: pg.ConnectionFailure,  # server has gone away [08006]
    2013: pg.ConnectionFailure,  # lost connection during a query
    2055: pg.ConnectionFailure,  # lost connection (reading the handshake, TLS)
    4031: pg.ConnectionFailure,  # MySQL 8: disconnected by the server for inactivity
    1927: pg.ConnectionFailure,  # the connection was killed
}

# the connection is gone: the caller reconnects rather than report the statement as failed
LOST = frozenset({2006, 2013, 2055, 4031, 1927, 1053})

_SIGNAL = 1644
_SIGNAL_CONTEXT = "SIGNAL in a trigger or stored routine of the database"

# The server's errors whose text names objects, privileges, limits or the server's state and
# never quotes a value. Any other errno carries a CONTEXT (:data:`_UNKNOWN_CONTEXT`), so that
# `retention.errors.server_text_is_safe` does not show or keep its text whatever its SQLSTATE:
# MariaDB has no CONTEXT of its own, and a trigger's `SIGNAL SQLSTATE '42000' SET MYSQL_ERRNO =
# 30001, MESSAGE_TEXT = CONCAT('patient ', NEW.name)` comes with the SQLSTATE it names (a
# "naming" class) and an errno of the trigger's choosing, not 1644. 1064 (syntax error) is not
# listed: its "near '...'" quotes the statement, which holds the values of a statement run with
# prepare=False (the driver escapes them into the text). A SIGNAL naming one of these errnos
# (MYSQL_ERRNO = 1142) cannot be told from the server's own error.
_NAMING_ERRNOS = frozenset(
    {
        *(1205, 3572, 1969, 3024, 1317, 1213),  # lock waits, timeouts, cancel, deadlock
        *(1142, 1143, 1044, 1045, 1227, 1370, 1141, 1147, 1133),  # privileges, accounts
        *(1146, 1050, 1054, 1049, 1046, 1051, 1109, 1305, 1630, 1052, 1066),  # names
        *(1059, 1060, 1061, 1068, 1072, 1091, 1102, 1103, 1110, 1166, 1176, 1280, 1286),
        *(1235, 1248, 1461, 1792, 1203, 1226, 1040),  # unsupported, limits, read only
        *(1053, 2006, 2013, 2055, 4031, 1927, 1043, 1047, 1080, 1081),  # connection
        *(1152, 1158, 1159, 1160, 1161),
    }
)
_UNKNOWN_CONTEXT = (
    "MariaDB error whose text is not known to be free of values (it may come from a SIGNAL "
    "of the database's own code)"
)

# the driver's own classes, for errors whose SQLSTATE class says nothing (HY000, none)
_BY_DRIVER_CLASS: dict[str, type[psycopg.Error]] = {
    "OperationalError": psycopg.OperationalError,
    "ProgrammingError": psycopg.ProgrammingError,
    "IntegrityError": psycopg.IntegrityError,
    "DataError": psycopg.DataError,
    "NotSupportedError": psycopg.NotSupportedError,
    "InternalError": psycopg.InternalError,
    "InterfaceError": psycopg.InterfaceError,
}


def translate(exc: BaseException) -> psycopg.Error:
    """The standard class for a driver error, with the server's message and SQLSTATE.

    The driver never frees the errors it raises (1.1.14, `mariadb_throw_exception`: the
    exception object's reference is leaked): its traceback is dropped here, else the frames it
    holds (the driver's cursor and its connection, the statement's values) would stay in memory
    for good, one set per error."""
    forget_frames(exc)
    errno, state, message = _parts(exc)
    cls = _classify(errno, state, type(exc).__name__)
    context = (
        _SIGNAL_CONTEXT
        if errno == _SIGNAL
        else None
        if errno in _NAMING_ERRNOS
        else _UNKNOWN_CONTEXT
    )
    error = cls(message, info=_diagnostic(cls.sqlstate or state or None, message, context))
    error.__dict__.update(mariadb_errno=errno, mariadb_sqlstate=state)
    return error


def forget_frames(exc: BaseException) -> None:
    """Drop a driver error's traceback (`translate`: the driver leaks its errors)."""
    exc.__traceback__ = None


def quietly(call: Callable[[], object], *failures: type[BaseException]) -> None:
    """`call()`, its `failures` ignored (and their frames forgotten: `translate`)."""
    try:
        call()
    except failures as exc:
        forget_frames(exc)


def errno_of(exc: BaseException) -> int | None:
    """MariaDB's error number of a translated error (None for another error)."""
    value = exc.__dict__.get("mariadb_errno")
    return value if isinstance(value, int) else None


def server_sqlstate_of(exc: BaseException) -> str | None:
    """MariaDB's own SQLSTATE of a translated error (`HY000` for a lock wait timeout)."""
    value = exc.__dict__.get("mariadb_sqlstate")
    return value if isinstance(value, str) and value else None


def is_lost(exc: BaseException) -> bool:
    """The error says the connection is gone (a translated error or the driver's own)."""
    errno = errno_of(exc)
    if errno is None:
        errno = _parts(exc)[0] if _is_driver_error(exc) else None
    return errno in LOST or (
        isinstance(exc, psycopg.OperationalError) and (exc.sqlstate or "").startswith("08")
    )


def is_server_error(exc: BaseException) -> bool:
    """Raised by the server for a statement it received (not by the client library)."""
    errno = errno_of(exc)
    if errno is None:
        return False
    return 1000 <= errno < 2000 or 3000 <= errno < 5000


def _parts(exc: BaseException) -> tuple[int, str, str]:
    errno = getattr(exc, "errno", None)
    state = getattr(exc, "sqlstate", None)
    message = getattr(exc, "errmsg", None) or str(exc)
    return (
        errno if isinstance(errno, int) else 0,
        state if isinstance(state, str) else "",
        message if isinstance(message, str) else str(message),
    )


def _is_driver_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] == "mariadb"


def _classify(errno: int, state: str, driver_class: str) -> type[psycopg.Error]:
    if errno == _SIGNAL:
        return _signalled(state)
    if errno in _BY_ERRNO:
        return _BY_ERRNO[errno]
    if len(state) == 5 and state[:2] not in ("HY", "00", "01", "02"):
        with suppress(KeyError):
            return pg.lookup(state)  # a standard SQLSTATE: 21000, 22007, 42000...
        base = pg.get_base_exception(state)
        if base is not psycopg.DatabaseError:
            return base
    return _BY_DRIVER_CLASS.get(driver_class, psycopg.DatabaseError)


def _signalled(state: str) -> type[psycopg.Error]:
    try:
        cls = pg.lookup(state)
    except KeyError:
        return pg.RaiseException
    return cls if state != "45000" else pg.RaiseException


def unreadable_value() -> psycopg.Error:
    """The driver could not convert a value it read (it raises SystemError/ValueError)."""
    message = (
        "the MariaDB driver cannot read a value of this result: a zero date ('0000-00-00') "
        "or a date with a zero month or day, most likely; select such columns as "
        "CAST(column AS CHAR) (docs/ENGINES.md, 2.4)"
    )
    info = _diagnostic(pg.DatetimeFieldOverflow.sqlstate, message, None)
    return pg.DatetimeFieldOverflow(message, info=info)


def _diagnostic(sqlstate: str | None, message: str, context: str | None) -> dict[int, bytes | None]:
    """What psycopg's `exc.diag` reads (the fields of a PostgreSQL error message)."""
    return {
        DiagnosticField.SEVERITY: b"ERROR",
        DiagnosticField.SQLSTATE: sqlstate.encode() if sqlstate else None,
        DiagnosticField.MESSAGE_PRIMARY: message.encode(),
        DiagnosticField.CONTEXT: context.encode() if context else None,
    }
