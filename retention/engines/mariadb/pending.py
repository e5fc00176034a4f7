"""The engine concerns MariaDB does not implement yet (issue 20 adds them one by one).

Each is an object whose every method raises a :class:`DatabaseError` naming the concern and the
method, so that a command reaching one on MariaDB stops with a clear line instead of a
PostgreSQL statement refused by the server. `MariaDB` declares them with their protocol's type
(mypy then checks the callers); replacing one by an implementation is a one-line change there.
"""

from __future__ import annotations

from typing import Any, NoReturn

from retention.errors import DatabaseError


class Pending:
    def __init__(self, concern: str) -> None:
        self._concern = concern

    def __getattr__(self, method: str) -> Any:
        if method.startswith("__"):
            raise AttributeError(method)

        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            raise DatabaseError(
                f"MariaDB: {self._concern}.{method} is not implemented yet",
                hint="run this command on PostgreSQL (issue 20 brings it to MariaDB)",
            )

        return refuse
