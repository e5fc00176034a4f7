"""The tool's own schema (holds, audit trail, archive catalogue, ...): its migrations and how they
are applied, which are each engine's (types, triggers, transactional DDL or not).

Migrations are numbered; every engine ships the same numbers (docs/ENGINES.md, 2.9). The neutral
caller is retention.store.schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from retention.engines.connection import Connection


@dataclass(frozen=True)
class Migration:
    """One numbered step; `statements` run in order (PostgreSQL: one text, one transaction)."""

    version: int
    name: str
    statements: tuple[str, ...]


class OwnSchema(Protocol):
    def migrations(self) -> list[Migration]:
        """Every shipped migration, in order."""
        ...

    def migrate(self, conn: Connection, schema: str) -> list[str]:
        """Create or upgrade the tool's schema `schema`, one migrator at a time; the names of
        the migrations applied (none when it was up to date)."""
        ...

    def append_only_problems(self, conn: Connection, schema: str) -> list[str] | None:
        """What would let the connected account rewrite the audit trail of `schema` (empty:
        nothing found); None when the engine does not check it (PostgreSQL: its trigger
        refuses UPDATE, DELETE and TRUNCATE, `retention grants` gives INSERT only)."""
        ...
