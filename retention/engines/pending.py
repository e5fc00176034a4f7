"""Steps still written in PostgreSQL's SQL (docs/ENGINES.md, 2.3.1 and section 1's work list):
on another engine they are refused with a clear message naming what is not supported yet,
instead of sending the server SQL it cannot parse (a syntax error and a traceback).

Each such step asks :func:`not_yet` before it runs; once its SQL has moved behind the engine,
the call goes. A check that cannot run on the engine says so as a problem of its own (an error
where it guards a destructive phase: fail closed); a command option that cannot run raises
:class:`NotYetSupportedError`.
"""

from __future__ import annotations

from retention.engines import Connection, engine_of
from retention.errors import RetentionError

POSTGRESQL = "postgresql"


class NotYetSupportedError(RetentionError):
    """A step of a command is written in PostgreSQL's SQL only."""

    exit_code = 2


def not_yet(conn: Connection) -> str | None:
    """The engine's name when steps written in PostgreSQL's SQL cannot run on it, else None."""
    name = engine_of(conn).name
    return None if name == POSTGRESQL else name


def require_postgresql(conn: Connection, what: str, where: str) -> None:
    """Raise :class:`NotYetSupportedError` for `what` (a step, in words) on another engine; `where`
    names the code still written in PostgreSQL's SQL."""
    engine = not_yet(conn)
    if engine is not None:
        raise NotYetSupportedError(
            f"{what} is not supported on {engine} yet ({where} is written in PostgreSQL's SQL)",
            hint="run the command without it; it works on PostgreSQL",
        )
