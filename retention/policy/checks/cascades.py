"""What a statement sets off through the foreign keys' actions: the rows an UPDATE changes
further (ON UPDATE CASCADE, SET NULL, SET DEFAULT), and the rows deleting a record deletes or
changes beyond its links (ON DELETE CASCADE, SET NULL, SET DEFAULT); and so every table a
phase changes (`phase_writes`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from retention.catalog.introspect import Catalog, ForeignKey
from retention.policy.actions import spec_of
from retention.policy.bound import BoundPhase
from retention.policy.relations import QName, RelationGraph, is_link


@dataclass
class Reach:
    """What an UPDATE sets off through foreign keys' ON UPDATE actions: the columns whose
    value changes (`changed`: a referenced key is checked only when its value changes), the
    columns written (`written`: a cascade writes every column of its key, which fires
    `UPDATE OF` triggers on them), and the keys that acted."""

    changed: dict[QName, set[str]]
    written: dict[QName, set[str]]
    keys: list[ForeignKey]


def update_reach(catalog: Catalog, written: Mapping[QName, set[str]]) -> Reach:
    """Follow ON UPDATE CASCADE, SET NULL and SET DEFAULT from the columns `written`, however
    deep the chain. CASCADE passes on the changed positions of the key only; SET NULL and SET
    DEFAULT change every column of the key."""
    changed = {table: set(columns) for table, columns in written.items()}
    wrote = {table: set(columns) for table, columns in written.items()}
    keys: list[ForeignKey] = []
    grew = True
    while grew:
        grew = False
        for fk in catalog.rooted_keys:
            if fk.on_update in ("no action", "restrict"):
                continue
            source = changed.get(fk.ref_table, set())
            positions = [i for i, c in enumerate(fk.ref_columns) if c in source]
            if not positions:
                continue
            moved = (
                {fk.columns[i] for i in positions} if fk.on_update == "cascade" else set(fk.columns)
            )
            target = changed.setdefault(fk.table, set())
            wrote.setdefault(fk.table, set()).update(fk.columns)
            if fk not in keys:
                keys.append(fk)
            if not moved <= target:
                target.update(moved)
                grew = True
    return Reach(changed, wrote, keys)


def delete_reach(
    catalog: Catalog, graph: RelationGraph | None
) -> tuple[set[QName], dict[QName, set[str]]]:
    """The tables whose rows deleting the record's deletes (its own, and those the foreign
    keys that are not its links cascade to), and the columns those keys set to NULL or a
    default (an UPDATE)."""
    deleted = set(graph.tables) if graph is not None else set()
    changed: dict[QName, set[str]] = {}
    grew = True
    while grew:
        grew = False
        for fk in catalog.rooted_keys:
            if fk.ref_table not in deleted:
                continue
            if graph is not None and is_link(
                graph, fk.table, fk.ref_table, fk.columns, fk.ref_columns
            ):
                continue  # a link of the record: its rows are deleted before the parent's
            if fk.on_delete == "cascade" and fk.table not in deleted:
                deleted.add(fk.table)
                grew = True
            elif fk.on_delete in ("set null", "set default"):
                changed.setdefault(fk.table, set()).update(fk.columns)
    return deleted, changed


@dataclass(frozen=True)
class Writes:
    """What a phase's statements change: the tables whose rows they delete, and the columns
    they write, by table (the phase's own, and those the foreign keys' actions reach)."""

    deleted: frozenset[QName]
    updated: dict[QName, set[str]]

    @property
    def tables(self) -> set[QName]:
        return set(self.deleted) | set(self.updated)


def phase_writes(catalog: Catalog, graph: RelationGraph | None, phase: BoundPhase) -> Writes:
    """Every table a phase changes: a purge or an archive deletes the record's rows and those
    the foreign keys outside its links cascade to, and updates the columns they set to NULL
    or a default; a column action writes its columns, and what their ON UPDATE actions
    change further."""
    if spec_of(phase.action).removes_records:
        deleted, changed = delete_reach(catalog, graph)
        return Writes(frozenset(deleted), update_reach(catalog, changed).written)
    written: dict[QName, set[str]] = {}
    for item in phase.columns:
        written.setdefault(item.table.qname, set()).add(item.column.name)
    return Writes(frozenset(), update_reach(catalog, written).written)
