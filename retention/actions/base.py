"""The action interface and the registry of actions by name."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from retention.engines import Connection, sql
from retention.engines.dialect import Dialect
from retention.errors import RetentionError
from retention.keys import Key
from retention.policy.actions import SPECS
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import QName

if TYPE_CHECKING:
    from retention.archive.session import ArchiveSession


class Aside(Protocol):
    """Where a batch changes its tables without transactions (MyISAM, Aria): a connection of
    its own in autocommit, each statement committed by itself, never inside the batch's
    transaction. MySQL under `enforce_gtid_consistency` refuses such a change in a transaction
    that also writes InnoDB (error 1785); and inside it the change was no more atomic: a
    ROLLBACK never undid it. The batch's intent, written before, is what makes the batch
    complete (retention.engine.journal)."""

    @property
    def tables(self) -> frozenset[QName]:
        """The tables without transactions the batch changes."""
        ...

    def connection(self) -> AbstractContextManager[Connection]:
        """The connection, for this batch alone until the block ends."""
        ...


@dataclass(frozen=True)
class Batch:
    """Subjects locked and re-checked in the current transaction, and what to do to them."""

    policy: BoundPolicy
    phase: BoundPhase
    keys: Sequence[Any]
    pseudonym_key: Key | None = None
    archive: ArchiveSession | None = None  # where `archive` writes (None: not configured)
    ends: Mapping[Any, date | None] = field(default_factory=dict)  # end of retention (archive)
    digests: Mapping[Any, str] = field(default_factory=dict)  # keyed digest of each subject
    detail: dict[str, Any] = field(default_factory=dict)  # added to the batch's audit entry
    # purge: link values of rows an interrupted batch already deleted, per table (its intent's)
    kept: Mapping[QName, Sequence[Sequence[Any]]] = field(default_factory=dict)
    aside: Aside | None = None  # where its tables without transactions are changed

    def on(self, conn: Connection, table: QName) -> AbstractContextManager[Connection]:
        """The connection that changes `table`: the batch's own (`conn`, in its transaction),
        or, for a table without transactions, the aside connection (`Aside`)."""
        if self.aside is None or table not in self.aside.tables:
            return nullcontext(conn)
        return self.aside.connection()

    def keys_sql(self, params: Params, dialect: Dialect) -> sql.Composable:
        """The keys as the inside of `IN (...)`, bound as one parameter (PostgreSQL
        `SELECT unnest(<keys>::<key type>[])`)."""
        return dialect.key_list(params, self.keys, self.policy.key)

    def table_name(self, table: QName) -> str:
        return f"{table[0]}.{table[1]}"


def per_table(
    conn: Connection, batch: Batch, work: Callable[[Connection, QName], int]
) -> dict[str, int]:
    """`work` done on each table of the batch's phase, each on the connection that changes
    it (`Batch.on`); rows changed per table ("schema.table")."""
    done: dict[str, int] = {}
    for table in batch.phase.tables:
        with batch.on(conn, table) as changing:
            done[batch.table_name(table)] = work(changing, table)
    return done


class Action(Protocol):
    """What a phase does. `apply` runs inside the batch transaction and returns rows changed
    per table ("schema.table")."""

    name: ClassVar[str]

    def apply(self, conn: Connection, batch: Batch) -> dict[str, int]: ...


class ActionNotAvailableError(RetentionError):
    """The policy asks for an action this version cannot execute yet."""

    exit_code = 2


def action_for(name: str) -> Action:
    """The action implementing `name`."""
    if name not in SPECS:
        raise ActionNotAvailableError(
            f"action '{name}' cannot be executed by this version",
            hint="run the other phases with --phase, or upgrade",
        )
    module, cls = SPECS[name].implementation.split(":")
    # Imported on demand: scrub loads Presidio and spaCy, which a purge-only run never needs.
    action: Action = getattr(importlib.import_module(module), cls)()
    return action
