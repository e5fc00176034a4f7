"""The tool's own schema (holds, audit trail, archive catalogue, ...): its migrations and how they
are applied, which are each engine's (types, triggers, transactional DDL or not).

Migrations are numbered; every engine ships the same numbers (docs/ENGINES.md, 2.9). The neutral
caller is retention.store.schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from retention.engines.connection import Connection


@dataclass(frozen=True)
class Migration:
    """One numbered step; `statements` run in order (PostgreSQL: one text, one transaction)."""

    version: int
    name: str
    statements: tuple[str, ...]


# The columns every engine's migrations give the tool's tables, once all applied; each engine
# adds its own (`OwnSchema.columns`; tests/test_own_tables_altered.py compares them with a
# fresh `init` on each engine, so that a migration adding a column adds it here too).
SHARED_COLUMNS: dict[str, tuple[str, ...]] = {
    "archive_files": ("file_id", "name", "version", "run_id", "policy", "policy_sha256", "phase",
                      "created_at", "bytes", "sha256", "recipients", "destroyed_at"),
    "archive_segments": ("file_id", "grp", "expires_on", "subjects", "rows", "bytes", "sha256",
                         "destroyed_at"),
    "audit": ("seq", "recorded_at", "run_id", "event", "policy", "policy_sha256", "phase",
              "action", "rows", "subjects", "subject_digests", "key_id", "actor", "outcome",
              "detail", "prev_hash", "hash", "sig_key", "signature"),
    "exposure": ("snapshot_id", "taken_at", "at", "run_id", "figures"),
    "holds": ("hold_id", "policy", "subject_key", "reason", "held_since", "held_by",
              "released_at", "released_by", "subject_table", "subject_column"),
    "intents": ("intent_id", "run_id", "policy", "policy_sha256", "phases", "subject_keys",
                "link_values", "created_at"),
    "runs": ("run_id", "started_at", "ended_at", "outcome", "command", "host", "os_user",
             "db_user", "pid"),
    "scan_columns": ("scan_id", "schema_name", "table_name", "column_name", "entity", "score",
                     "evidence"),
    "scans": ("scan_id", "scanned_at", "stored_at", "scanned_by", "scope", "seconds", "columns",
              "personal"),
    "schema_version": ("version", "name", "applied_at"),
    "scrubbed": ("target", "analyser", "digest", "recorded_at"),
}  # fmt: skip


class OwnSchema(Protocol):
    def migrations(self) -> list[Migration]:
        """Every shipped migration, in order."""
        ...

    def columns(self) -> Mapping[str, tuple[str, ...]]:
        """Each table of the tool's schema and its columns once every migration is applied
        (`SHARED_COLUMNS` and the engine's own): what `init`, and a command stopped by a
        missing column or table, compare with the schema found (a column dropped or renamed
        by hand)."""
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
