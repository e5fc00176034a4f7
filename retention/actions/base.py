"""The action interface and the registry of actions by name."""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
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

    def keys_sql(self, params: Params, dialect: Dialect) -> sql.Composable:
        """The keys as the inside of `IN (...)`, bound as one parameter (PostgreSQL
        `SELECT unnest(<keys>::<key type>[])`)."""
        return dialect.key_list(params, self.keys, self.policy.key)

    def table_name(self, table: QName) -> str:
        return f"{table[0]}.{table[1]}"


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
