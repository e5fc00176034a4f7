"""Database errors in SQL's standard vocabulary (SQLSTATE classes), whichever engine runs.

The classes are psycopg's, named by SQLSTATE; another engine translates its driver's errors into
them (`retention/engines/mariadb/errors.py`), so callers catch one set of classes.
"""

from __future__ import annotations

from psycopg import DataError, Error, IntegrityError, OperationalError, ProgrammingError
from psycopg.errors import (
    DeadlockDetected,
    DuplicateTable,
    InsufficientPrivilege,
    InvalidCatalogName,
    LockNotAvailable,
    QueryCanceled,
    SerializationFailure,
    UndefinedTable,
    UniqueViolation,
)

from retention.errors import KNOWN_CONDITIONS, RetentionError, server_text_is_safe

__all__ = [
    "DataError",
    "DeadlockDetected",
    "DuplicateTable",
    "Error",
    "InsufficientPrivilege",
    "IntegrityError",
    "InvalidCatalogName",
    "LockNotAvailable",
    "OperationalError",
    "ProgrammingError",
    "QueryCanceled",
    "SerializationFailure",
    "UndefinedTable",
    "UniqueViolation",
    "describe_error",
]


def describe_error(exc: Exception) -> str:
    """What went wrong, without any value: ours are names and counts only; the server's text
    only for classes that name objects and never quote values (a denied privilege, a timeout);
    otherwise (a data error quotes the value, a trigger's RAISE can say anything, and the
    audit trail keeps what it is given forever) the error's class, SQLSTATE and the names of
    the objects involved."""
    if isinstance(exc, RetentionError):
        return exc.message
    if not isinstance(exc, Error):
        return type(exc).__name__
    diag = exc.diag
    if server_text_is_safe(exc.sqlstate, diag.context) and diag.message_primary:
        # names a table, a privilege, a timeout: what the operator needs, never a value
        return f"{diag.message_primary} (SQLSTATE {exc.sqlstate})"
    names = [
        f"{what} {name}"
        for what, name in (
            ("table", diag.table_name),
            ("column", diag.column_name),
            ("constraint", diag.constraint_name),
        )
        if name
    ]
    where = f" on {', '.join(names)}" if names else ""
    said = KNOWN_CONDITIONS.get(exc.sqlstate or "")
    known = f"{said}: " if said else ""
    return f"{known}{type(exc).__name__} (SQLSTATE {exc.sqlstate or 'none'}{_server(exc)}){where}"


def _server(exc: Exception) -> str:
    """The server's own error number and SQLSTATE where they differ from the class shown
    (MariaDB's, which engines/mariadb/errors.py keeps on the error it translates: a DBA looks
    up 1644 / 45000, not P0001)."""
    errno, state = exc.__dict__.get("mariadb_errno"), exc.__dict__.get("mariadb_sqlstate")
    if not isinstance(errno, int):
        return ""
    shown = f", SQLSTATE {state}" if isinstance(state, str) and state else ""
    return f"; MariaDB error {errno}{shown}"
