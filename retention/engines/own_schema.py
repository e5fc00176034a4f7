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

    def serves_this_database(self, conn: Connection, other: str) -> bool:
        """Whether the tool's schema `other`, beside the one configured, keeps what concerns
        the connection's database, so that starting an empty one instead would lose its legal
        holds (retention.store.schema.refuse_a_stray_schema). PostgreSQL: always (a schema of
        this database); MariaDB/MySQL, whose tool database sits beside the application's on
        the server: when it holds legal holds on this database's tables (a hold recorded
        without its table, as before holds had a scope, names no database: not counted, or
        every application sharing the server would be refused on its first install)."""
        ...

    def append_only_problems(self, conn: Connection, schema: str) -> list[str] | None:
        """What would let the connected account rewrite the audit trail of `schema` (empty:
        nothing found; None when the engine does not check it): its triggers missing,
        disabled or changed, and (MariaDB) a rewriting privilege of the account."""
        ...

    def trigger_problems(self, conn: Connection, schema: str) -> list[str]:
        """The trail's append-only triggers missing, disabled or changed (what `audit
        verify` and each run say; empty: they are as `init` made them)."""
        ...

    def repair(self, conn: Connection, schema: str) -> list[str]:
        """Make the trail's triggers again where missing, disabled or changed (`retention
        init`, as the owner); the problems repaired."""
        ...
