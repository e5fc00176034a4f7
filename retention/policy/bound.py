"""The bound policy: what a policy becomes once every name in it is checked against the
database catalogue (retention.policy.bind).

Plans, actions, archives and reports are computed from these types; nothing here checks or
executes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from retention.catalog.introspect import Catalog, Column, Table
from retention.policy.actions import spec_of
from retention.policy.expr import Expr
from retention.policy.load import LoadedPolicy
from retention.policy.model import ColumnSpec
from retention.policy.relations import QName, RelationGraph
from retention.store.ledger import Ledger

RETAIN_UNTIL = "retain_until"


@dataclass(frozen=True)
class Join:
    """A many-to-one join from an aggregate's table to a table holding the value: the
    aggregate's `columns` equal the joined table's `ref_columns`, through a foreign key or a
    declared column link (`origin` says which)."""

    table: Table
    columns: tuple[str, ...]
    ref_columns: tuple[str, ...]
    origin: str

    @property
    def enforced(self) -> bool:
        """A foreign key: a value that is not NULL always finds its row (a declared link's
        may find none, its row deleted)."""
        return self.origin.startswith("foreign key ")


@dataclass(frozen=True)
class BoundDate:
    """A named date, resolved."""

    name: str
    kind: Literal["column", "aggregate", "expression"]
    column: Column | None = None
    format: str | None = None
    if_missing: str = "undeterminable"
    function: str = "max"
    over: Table | None = None
    joins: tuple[Join, ...] = ()
    value: Expr | None = None  # aggregated value, or the derived expression
    where: Expr | None = None
    depends: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BoundColumn:
    """A column an action applies to."""

    table: Table
    column: Column
    spec: ColumnSpec
    ledger: Ledger | None = None  # scrub: texts already left clean (retention.store.ledger)


@dataclass(frozen=True)
class BoundPhase:
    """A phase, resolved: due expression and target columns."""

    name: str
    action: str
    due: Expr
    columns: tuple[BoundColumn, ...]
    depends: frozenset[str]
    # tables without transactions the phase accepts changing (`accept_non_transactional`)
    accepted_non_transactional: frozenset[QName] = frozenset()

    @property
    def needs_pseudonym_key(self) -> bool:
        return spec_of(self.action).needs_pseudonym_key(c.spec for c in self.columns)

    @property
    def tables(self) -> tuple[QName, ...]:
        """Tables the column action writes to, in first-seen order."""
        seen: dict[QName, None] = {}
        for item in self.columns:
            seen.setdefault(item.table.qname, None)
        return tuple(seen)


@dataclass(frozen=True)
class BoundPolicy:
    """A policy whose every name is known to exist in the database."""

    loaded: LoadedPolicy
    catalog: Catalog
    subject: Table
    key: Column
    graph: RelationGraph
    dates: dict[str, BoundDate]
    retain_until: Expr
    retain_depends: frozenset[str]
    phases: tuple[BoundPhase, ...]
    # the loaded policies whose subject is the same table and key, this one included: a hold
    # recorded under any of them before holds had a scope (migration 008) holds the person
    # under this policy too (set by check.bind_all; alone, the policy's own name)
    siblings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.loaded.name

    def table(self, qname: QName) -> Table:
        return self.catalog.tables[qname]

    def phase(self, name: str) -> BoundPhase:
        return next(p for p in self.phases if p.name == name)
