"""Coverage: which personal columns no policy minimises (fail closed).

A personal column of the inventory is covered when some policy

- erases, pseudonymizes, generalizes or scrubs it in a phase;
- archives or purges whole records of its table (every table of the policy's relation
  graph: the subject and every related table);
- or marks it as kept, with a reason (``keep: [{column: table.column, reason: ...}]``).

Anything else is a gap: ``retention check --coverage`` lists the gaps and exits 3.
Deciding is pure: no database access.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from retention.discovery.model import PERSONAL_ENTITIES, ColumnVerdict
from retention.engines import Connection
from retention.policy.actions import ROW_ACTIONS
from retention.policy.bound import BoundPolicy

QColumn = tuple[str, str, str]  # schema, table, column


@dataclass(frozen=True)
class Coverage:
    """How one personal column is covered (``by`` empty: a gap)."""

    schema: str
    table: str
    column: str
    entity: str
    score: float
    by: tuple[str, ...]  # "policy/phase (action)" or "policy keep: reason"

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table}.{self.column}"

    @property
    def covered(self) -> bool:
        return bool(self.by)


@dataclass(frozen=True)
class Gap:
    """A personal column that no policy minimises or keeps."""

    schema: str
    table: str
    column: str
    entity: str
    score: float

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table}.{self.column}"

    def render(self) -> str:
        return (
            f"{self.label}: {self.entity} (confidence {self.score:.2f}) is not covered "
            "by any policy"
        )


def coverage(
    inventory_columns: Iterable[ColumnVerdict], bound_policies: Iterable[BoundPolicy]
) -> list[Coverage]:
    """Every personal column of the inventory, with what covers it."""
    covers = _covers(list(bound_policies))
    out = []
    for verdict in inventory_columns:
        if verdict.entity is None or verdict.entity not in PERSONAL_ENTITIES:
            continue
        key = verdict.key
        by = covers.get(key, []) + covers.get((key[0], key[1], "*"), [])
        out.append(Coverage(*key, verdict.entity, verdict.score, tuple(by)))
    return out


def coverage_gaps(
    inventory_columns: Iterable[ColumnVerdict], bound_policies: Iterable[BoundPolicy]
) -> list[Gap]:
    """Personal columns that no policy phase erases, pseudonymizes, generalizes, scrubs,
    archives or purges, and that no policy keeps: the gaps, in inventory order."""
    return [
        Gap(c.schema, c.table, c.column, c.entity, c.score)
        for c in coverage(inventory_columns, bound_policies)
        if not c.covered
    ]


def _covers(policies: list[BoundPolicy]) -> dict[QColumn, list[str]]:
    """(schema, table, column or '*') -> descriptions of what covers it."""
    covers: dict[QColumn, list[str]] = {}
    for policy in policies:
        for phase in policy.phases:
            what = f"{policy.name}/{phase.name} ({phase.action})"
            if phase.action in ROW_ACTIONS:
                for schema, table in policy.graph.tables:
                    covers.setdefault((schema, table, "*"), []).append(what)
            for bound in phase.columns:
                key = (bound.table.schema, bound.table.name, bound.column.name)
                covers.setdefault(key, []).append(what)
        for kept in policy.loaded.policy.keep:
            target = _kept_column(policy, kept.column)
            if target is not None:
                covers.setdefault(target, []).append(f"{policy.name} keeps it: {kept.reason}")
    return covers


def _kept_column(policy: BoundPolicy, name: str) -> QColumn | None:
    """``column`` (of the subject table) or ``table.column`` / ``schema.table.column``."""
    table_name, _, column = name.rpartition(".")
    table = policy.subject if not table_name else policy.catalog.find(table_name)
    if table is None:
        return None
    return (table.schema, table.name, column)


def current_gaps(
    conn: Connection, schema: str, bound_policies: Iterable[BoundPolicy]
) -> list[Gap] | None:
    """Gaps against the last stored scan, or None when no scan was ever stored."""
    from retention.discovery.inventory import installed, last_scan_id, latest_inventory

    if not installed(conn, schema) or last_scan_id(conn, schema=schema) is None:
        return None
    return coverage_gaps(latest_inventory(conn, schema=schema), bound_policies)
