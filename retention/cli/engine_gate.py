"""Commands that do not run on every engine yet are refused before they read or write anything.

On MariaDB/MySQL (issue 20, being built) a command whose steps are still written in PostgreSQL's
SQL would otherwise stop half-way with a database error. Refusing it up front, with what works
instead, is the fail-closed answer: nothing is half-done, and the operator knows why.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from retention.engines import engine_for
from retention.engines.pending import NotYetSupportedError
from retention.settings import Settings

# handler (module, function) -> what the operator asked for, in words
NOT_ON_MARIADB_YET: dict[tuple[str, str], str] = {}

WORKS_ON_MARIADB = (
    "init, grants, check, plan, run, daemon, report, exposure, audit verify/show/find, "
    "hold add/release/list, approve, intents, scan, draft, demo, archive list/verify/restore"
)


def refuse_unsupported(handler: Callable[..., Any], settings: Settings) -> None:
    """Raise NotYetSupportedError when the configured engine cannot run this command yet."""
    if settings.database_url is None:
        return
    what = NOT_ON_MARIADB_YET.get((handler.__module__, handler.__name__))
    if what is None:
        return
    engine = engine_for(settings.database_url.get_secret_value()).name
    if engine == "postgresql":
        return
    raise NotYetSupportedError(
        f"{what} does not run on {engine} yet (issue 20: the MariaDB/MySQL engine is being built)",
        hint=f"on {engine} today: {WORKS_ON_MARIADB}; README, 'MariaDB and MySQL (DBAs)'",
    )
