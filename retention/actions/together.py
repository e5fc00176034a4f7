"""The column phases of one pass applied together: each row is rewritten once.

A pass (see retention.plan.passes) holds consecutive column phases with the same due date, e.g.
pseudonymise the names and erase the contact data three years after the last visit. Applied one
after the other, they would rewrite every row of a table they share once per phase: one row
version per phase, as many index entries and as much WAL (measured at 189,728 patients: the
erasure's UPDATE after the pseudonymisation's cost 2.5 s, more than the first).

For each table that several phases of the pass change, the batch reads the rows once, locked
`FOR NO KEY UPDATE`, with one flag per phase telling whether that phase still has work on the
row (its `pending` condition, the same as the plan's and the single-phase actions'), computes
the pseudonyms in this process (the key never reaches the server), stages (primary key,
pseudonyms, flags) in bulk and rewrites each row with one UPDATE joined to them
(retention.actions.writeback): a column takes its phase's new value where its phase's flag is
set and keeps its value elsewhere. Each phase still
gets its own row count and audit entry.

Subjects are grouped by the phases they are due for (e.g. names already pseudonymised: due for
the erasure only), each group's phases applied together. The phases are applied one after the
other, as before, when combining them could change the result or is not possible: a column two
phases change, a table without primary key, a NOT NULL column erased to a default the catalogue
does not give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol, cast

from retention.actions.base import Batch, action_for
from retention.actions.pseudonymize import needs_key, pseudonymiser
from retention.actions.writeback import flag_names, write_back_flagged
from retention.engines import Connection, engine_of, sql
from retention.policy.actions import spec_of
from retention.policy.bound import BoundColumn
from retention.policy.expr import Params
from retention.policy.relations import QName
from retention.rows.members import members
from retention.rows.values import new_value, pending


class _PerTable(Protocol):
    def table(self, conn: Connection, batch: Batch, table: QName) -> int: ...


def apply_together(conn: Connection, batches: Sequence[Batch]) -> list[dict[str, int]]:
    """Apply the column phases `batches` (one per phase of a pass, with the subjects due for
    that phase) in the current transaction; returns the rows changed per table, per phase."""
    if not all(spec_of(b.phase.action).together for b in batches):
        raise ValueError("only column phases are applied together")
    results: list[dict[str, int]] = [{} for _ in batches]
    by_table: dict[QName, list[int]] = {}
    for i, batch in enumerate(batches):
        if batch.keys:  # a phase none of whose subjects is left changes nothing: no rows
            for table in batch.phase.tables:
                by_table.setdefault(table, []).append(i)
    for table, phases in by_table.items():
        chosen = [batches[i] for i in phases]
        with chosen[0].on(conn, table) as changing:  # a table without transactions: aside
            counts = _table(changing, chosen, table)
        for i, count in zip(phases, counts, strict=True):
            results[i][batches[i].table_name(table)] = count
    return results


def _table(conn: Connection, batches: list[Batch], table: QName) -> list[int]:
    """Rows changed in `table` by each of `batches`. Subjects are grouped by the phases they
    are due for (usually all of them), and each group's phases are applied together."""
    names = [i.column.name for b in batches for i in _items(b, table)]
    if len(names) != len(set(names)):
        # a column two phases change: the order of the phases decides its value, for every
        # row (a row of two subjects could otherwise be changed by the first phase again
        # after the second): one phase after the other, for all the subjects
        return [_single(conn, b, table) for b in batches]
    groups: dict[tuple[int, ...], list[Any]] = {}
    members = [set(b.keys) for b in batches]
    if all(m == members[0] for m in members):  # the usual case: every phase due for all
        groups[tuple(range(len(batches)))] = list(dict.fromkeys(batches[0].keys))
    else:
        for key in dict.fromkeys(k for b in batches for k in b.keys):
            groups.setdefault(tuple(i for i, m in enumerate(members) if key in m), []).append(key)
    counts = [0] * len(batches)
    for phases, keys in groups.items():
        chosen = [replace(batches[i], keys=keys) for i in phases]
        if _combinable(chosen, table):
            done = _rewrite(conn, chosen, table)
        else:
            done = [_single(conn, b, table) for b in chosen]
        for i, n in zip(phases, done, strict=True):
            counts[i] += n
    return counts


def _single(conn: Connection, batch: Batch, table: QName) -> int:
    """One phase on one table (the column actions apply a phase table by table)."""
    return cast(_PerTable, action_for(batch.phase.action)).table(conn, batch, table)


def _items(batch: Batch, table: QName) -> list[BoundColumn]:
    return [i for i in batch.phase.columns if i.table.qname == table]


def _combinable(batches: list[Batch], table: QName) -> bool:
    if len(batches) < 2 or not batches[0].policy.table(table).primary_key:
        return False
    return not any(
        b.phase.action == "erase"
        and i.spec.value is None
        and i.column.not_null
        and i.column.default is None
        for b in batches
        for i in _items(b, table)
    )


def _rewrite(conn: Connection, batches: list[Batch], table: QName) -> list[int]:
    """One read, one staged write, one UPDATE for the phases `batches`, whose subjects are the
    same."""
    first = batches[0]
    dialect = engine_of(conn).dialect
    params = Params(prefix="t")
    primary = first.policy.table(table).primary_key
    flags = []
    for batch in batches:
        flags.append(
            sql.SQL("({})").format(
                sql.SQL(" OR ").join(
                    pending(
                        batch.phase.action,
                        i,
                        sql.Identifier("r", i.column.name),
                        params,
                        dialect=dialect,
                    )
                    for i in _items(batch, table)
                )
            )
        )
    sources = [i for b in batches if b.phase.action == "pseudonymize" for i in _items(b, table)]
    rows_of = members(
        first.policy, table, "r", first.keys_sql(params, dialect), params, dialect=dialect
    )
    # Locked until the batch commits: a concurrent edit cannot slip between read and write.
    select = sql.SQL("SELECT {} FROM {} WHERE {} AND ({}) {}").format(
        sql.SQL(", ").join(
            [
                *(sql.Identifier("r", c) for c in primary),
                *flags,
                *(sql.Identifier("r", i.column.name) for i in sources),
            ]
        ),
        dialect.member_rows(sql.Identifier(*table), "r", rows_of),
        rows_of.condition,
        sql.SQL(" OR ").join(flags),
        dialect.lock(no_key=True),
    )
    rows = conn.execute(select, params.values).fetchall()
    if not rows:
        return [0] * len(batches)
    width, phases = len(primary), len(batches)
    target = first.policy.table(table)
    flagged = flag_names(phases, list(target.columns))
    new = pseudonymiser(sources, needs_key(first)) if sources else None
    staged = []
    for row in rows:
        values = new(row[width + phases :]) if new is not None else []
        staged.append((*row[:width], *values, *row[width : width + phases]))
    assignments = [
        (
            i.column.name,
            sql.SQL("CASE WHEN {f} THEN {v} ELSE {r} END").format(
                f=sql.Identifier("p", flagged[n]),
                v=new_value(
                    batch.phase.action,
                    i,
                    sql.Identifier("r", i.column.name),
                    params,
                    in_expression=True,
                    dialect=dialect,
                ),
                r=sql.Identifier("r", i.column.name),
            ),
        )
        for n, batch in enumerate(batches)
        if batch.phase.action != "pseudonymize"
        for i in _items(batch, table)
    ]
    return write_back_flagged(
        conn,
        target,
        [i.column.name for i in sources],
        staged,
        flagged,
        assignments,
        params.values,
    )
