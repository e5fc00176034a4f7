"""The engine concerns MariaDB does not implement yet, or only in part (issue 20 adds them).

A `Pending` concern's methods raise :class:`NotYetSupportedError` (as the steps of
`retention/engines/pending.py` do) naming the concern and the method, so that a command reaching
one on MariaDB stops with a clear line instead of sending PostgreSQL's SQL to the server; the
methods given as keywords are the engine's own. `MariaDB` declares each concern with its
protocol's type (mypy then checks the callers); implementing one is a one-line change there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from retention.engines.pending import NotYetSupportedError


class Pending:
    def __init__(self, concern: str, **implemented: Callable[..., Any]) -> None:
        self._concern = concern
        self._implemented = implemented

    def __getattr__(self, method: str) -> Any:
        if method.startswith("__"):
            raise AttributeError(method)
        if method in self._implemented:
            return self._implemented[method]

        def refuse(*args: Any, **kwargs: Any) -> NoReturn:
            raise NotYetSupportedError(
                f"{self._concern}.{method} is not supported on mariadb yet",
                hint="it works on PostgreSQL",
            )

        return refuse
