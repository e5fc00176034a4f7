"""Composing SQL from names that come from policy files: the one composition API callers use.

The objects are psycopg's (`psycopg.sql`): on PostgreSQL psycopg renders them; other engines
render the same trees with their own quoting (`retention/engines/mariadb/render.py`). Names
are always `Identifier`s and values always parameters, never pasted into the text.
"""

from __future__ import annotations

import re

from psycopg.adapt import PyFormat
from psycopg.sql import SQL, Composable, Composed, Identifier, Literal, Placeholder

__all__ = [
    "SQL",
    "Composable",
    "Composed",
    "Identifier",
    "Literal",
    "Params",
    "Placeholder",
    "parameter",
]

_PREFIX = re.compile(r"[A-Za-z_]([A-Za-z0-9_]*[A-Za-z_])?")


def parameter(name: str, *, binary: bool = False) -> Placeholder:
    """The named placeholder `%(name)s`; `binary`: sent in binary format where the engine's
    driver can (PostgreSQL: arrays of thousands of keys, which the text format escapes element
    by element), as an ordinary parameter elsewhere."""
    return Placeholder(name, PyFormat.BINARY if binary else PyFormat.AUTO)


class Params:
    """Values for named placeholders `%(p1)s`, `%(p2)s`... allocated in order.

    `prefix` (letters, digits, `_`, not ending with a digit) keeps the names of several
    collections apart: `Params("c")` gives `c1`, `c2`...
    """

    def __init__(self, prefix: str = "p") -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"invalid placeholder prefix {prefix!r}")
        self.prefix = prefix
        self._values: dict[str, object] = {}

    def add(self, value: object, *, binary: bool = False) -> Composable:
        """Bind `value` to a new placeholder and return it (`binary`: sent in binary format
        where the driver can, e.g. arrays of thousands of keys)."""
        name = f"{self.prefix}{len(self._values) + 1}"
        self._values[name] = value
        return parameter(name, binary=binary)

    @property
    def values(self) -> dict[str, object]:
        """The bound values by placeholder name (a copy), to pass to `execute`."""
        return dict(self._values)
