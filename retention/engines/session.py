"""What a session sets for one transaction, and where it stands.

Settings made here hold until the current transaction ends (PostgreSQL: `set_config(..., true)`;
an engine without transaction-local settings restores its session values when the transaction
ends, docs/ENGINES.md 2.1 and 2.7). A call outside a transaction is not what callers do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from retention.engines import sql
from retention.engines.connection import Connection


@dataclass(frozen=True)
class Account:
    """Whom the connection acts as: its name, and whether it can bypass the audit trail's
    protections (PostgreSQL: a superuser; MariaDB: the SUPER privilege, or DROP and TRIGGER
    on every database)."""

    name: str
    superuser: bool


class Session(Protocol):
    def batch_limits(
        self, conn: Connection, *, lock_timeout_ms: int, statement_timeout_ms: int
    ) -> None:
        """A batch's transaction: bound its waits for row locks and each statement's time,
        and tune the planner for lookups by a few thousand keys where the engine needs it."""
        ...

    def autocommit_limits(
        self, conn: Connection, *, lock_timeout_ms: int, statement_timeout_ms: int
    ) -> None:
        """`batch_limits`' bounds on lock waits and statement time for the whole session of a
        connection whose statements each commit by themselves (a batch's aside connection,
        retention.actions.base.Aside): outside any transaction, until the session ends."""
        ...

    def lock_timeout(self, conn: Connection, ms: int) -> None:
        """Bound waits for locks to `ms` milliseconds (0: wait without limit)."""
        ...

    def whole_tables(self, conn: Connection, work_mem_mb: int) -> None:
        """This transaction's statements read whole tables (the clock of every subject: plan,
        exposure, forecast): the memory one sort or hash may use before spilling to disk, and
        whatever else the engine's planner needs for that (not for a batch's keyed lookups)."""
        ...

    def slice_bound(self, conn: Connection) -> int | None:
        """The most subjects one whole-table statement should evaluate the clock of, when the
        subjects are cut into slices (retention.plan.slices): so many that the engine can
        compute each child table's aggregate for all of them at once, in memory; None: no
        bound (one slice per connection)."""
        ...

    def grouped_at_once(self, conn: Connection, statement: sql.Composed) -> sql.Composed:
        """`statement`, a whole-table statement over one slice of at most `slice_bound`
        subjects, as the engine runs it best: each child table's aggregate computed once for
        the slice rather than looked up subject by subject (MariaDB's split materialisation).
        The same result either way."""
        ...

    def transaction_settings(self, conn: Connection, settings: Mapping[str, str]) -> None:
        """Settings by the engine's own names (callers whose SQL is the engine's already:
        e.g. the archive's COPY output styles), values sent as parameters."""
        ...

    def in_transaction(self, conn: Connection) -> bool:
        """False only when the connection is idle outside any transaction (a connection in a
        failed transaction, or in an unknown state, is in one)."""
        ...

    def pinned(self, conn: Connection) -> dict[str, str]:
        """The session settings the connection pinned (PostgreSQL: TimeZone, search_path),
        as they are now: another connection given them reads dates and names the same."""
        ...

    def pin(self, conn: Connection, settings: Mapping[str, str]) -> None:
        """Give the session `settings` (from `pinned`) until it ends."""
        ...

    def fresh_database(self, admin_url: str, name: str) -> str:
        """Drop the database `name` on the server of `admin_url` (its sessions ended) and
        create it again, empty; its URL. For the demonstration's own database only."""
        ...

    def account(self, conn: Connection) -> Account:
        """The account the connection acts as (the run's least-privilege warnings)."""
        ...

    def server_epoch(self, conn: Connection) -> float:
        """The database server's clock now, in seconds since 1970 (UTC)."""
        ...

    def identity(self, conn: Connection) -> tuple[Any, ...]:
        """What tells one database of one running server apart (another connection must
        reach the same): its name, and the server's identity and start."""
        ...
