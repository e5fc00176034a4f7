"""Locks the tool takes on its own behalf (not on rows): one run at a time, and work that
must not interleave inside a transaction (the audit chain's append, migrations).

PostgreSQL takes advisory locks (`postgresql/locks.py`); an engine without them takes a named
lock (MariaDB/MySQL `GET_LOCK`) or a row of the tool's own table `FOR UPDATE` (docs/ENGINES.md,
2.7).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from retention.engines.connection import Connection


class TransactionLock(enum.Enum):
    """What a transaction-scoped lock serialises."""

    AUDIT_CHAIN = "audit chain"  # one appender at a time keeps the chain linear
    MIGRATIONS = "migrations"  # one `init` at a time upgrades the tool's schema


@dataclass(frozen=True)
class Holder:
    """The server session holding the run lock, as the server reports it."""

    session_id: int
    host: str | None
    since: datetime | None


class Locks(Protocol):
    """The run lock is one per database (the connection's), held by a session until released
    or until the session ends; a transaction lock is held until the transaction ends."""

    def try_run_lock(self, conn: Connection) -> bool:
        """Take the run lock without waiting; False when another session holds it."""
        ...

    def release_run_lock(self, conn: Connection) -> None: ...

    def run_lock_holder(self, conn: Connection) -> Holder | None:
        """Who holds the run lock (None: nobody, or the server does not say)."""
        ...

    def lock_in_transaction(
        self, conn: Connection, lock: TransactionLock, *, schema: str = "retention"
    ) -> None:
        """Wait for `lock`, held until the current transaction ends. `schema`: the tool's, where
        an engine without transaction-scoped named locks keeps a row to lock (MariaDB:
        `schema`.locks); PostgreSQL's advisory locks do not need it."""
        ...
