"""What callers hold: an open connection and the cursor a statement returns.

The subset of psycopg 3's `Connection` that the tool uses, so a psycopg connection *is* a
PostgreSQL `Connection`. Re-exported by `retention.engines` (callers import it from there); the
engines' concern protocols (`locks.py`, `session.py`, ...) import it from here, below the
`Engine` that gathers them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from retention.engines import sql


class Cursor(Protocol):
    """What a statement returns: rows and the count of rows it matched."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


@runtime_checkable
class Connection(Protocol):
    """An open autocommit connection; every unit of work runs in `with conn.transaction():`."""

    @property
    def closed(self) -> bool: ...
    @property
    def broken(self) -> bool: ...
    @property
    def info(self) -> Any: ...
    def execute(
        self,
        query: sql.SQL | sql.Composed | str,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        prepare: bool | None = None,
        binary: bool = False,
    ) -> Cursor: ...
    def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AbstractContextManager[Any]: ...
    def cursor(self, *args: Any, **kwargs: Any) -> Any: ...
    def close(self) -> None: ...
    def cancel_safe(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None: ...
