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
    LockNotAvailable,
    QueryCanceled,
    SerializationFailure,
    UndefinedTable,
    UniqueViolation,
)

__all__ = [
    "DataError",
    "DeadlockDetected",
    "DuplicateTable",
    "Error",
    "InsufficientPrivilege",
    "IntegrityError",
    "LockNotAvailable",
    "OperationalError",
    "ProgrammingError",
    "QueryCanceled",
    "SerializationFailure",
    "UndefinedTable",
    "UniqueViolation",
]
