"""The least privileges of the tool's role, as a script in the engine's own syntax.

What the policies need is collected by `retention.grants` (the same on every engine): the
tables read, the columns updated, the tables deleted from; each engine writes the statements
(PostgreSQL roles and schemas, MariaDB `'user'@'host'` accounts and databases) and the grants
on the tool's own tables that `retention init` installed. The tool never runs the script.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol

from retention.engines.connection import Connection

QName = tuple[str, str]


class Grants(Protocol):
    def script(
        self,
        conn: Connection,
        role: str,
        *,
        policies: int,
        reads: Collection[QName],
        deletes: Collection[QName],
        updates: Mapping[QName, Collection[str]],
        schema: str,
    ) -> str:
        """The script, as text (one statement a line, comments for the reader), for the
        connection's database; `policies`: how many policies it serves."""
        ...
