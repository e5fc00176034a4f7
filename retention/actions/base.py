"""The action interface and the registry of actions by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import psycopg
from psycopg import sql

from retention.errors import RetentionError
from retention.keys import Key
from retention.policy.bind import BoundPhase, BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import QName


@dataclass(frozen=True)
class Batch:
    """Subjects locked and re-checked in the current transaction, and what to do to them."""

    policy: BoundPolicy
    phase: BoundPhase
    keys: Sequence[Any]
    pseudonym_key: Key | None = None

    def keys_sql(self, params: Params) -> sql.Composable:
        """`SELECT unnest(<keys>::<key type>[])`, the keys bound as one array parameter."""
        return sql.SQL("SELECT unnest({}::{}[])").format(
            params.add(list(self.keys)), sql.SQL(self.policy.key.type)
        )

    def table_name(self, table: QName) -> str:
        return f"{table[0]}.{table[1]}"


class Action(Protocol):
    """What a phase does. `apply` runs inside the batch transaction and returns rows changed
    per table ("schema.table")."""

    name: ClassVar[str]

    def apply(self, conn: psycopg.Connection[Any], batch: Batch) -> dict[str, int]: ...


class ActionNotAvailableError(RetentionError):
    """The policy asks for an action this version cannot execute yet."""

    exit_code = 2


def action_for(name: str) -> Action:
    """The action implementing `name`."""
    from retention.actions.columns import Erase, Generalize
    from retention.actions.pseudonymize import Pseudonymize
    from retention.actions.purge import Purge

    registry: dict[str, Action] = {
        "erase": Erase(),
        "generalize": Generalize(),
        "pseudonymize": Pseudonymize(),
        "purge": Purge(),
    }
    if name not in registry:
        raise ActionNotAvailableError(
            f"action '{name}' cannot be executed by this version",
            hint="run the other phases with --phase, or upgrade",
        )
    return registry[name]
