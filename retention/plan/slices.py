"""Slices: the clock of a large subject table evaluated on several connections at once.

The plan of a run and the exposure snapshot after it each evaluate the clock of every subject:
one statement, which PostgreSQL runs on one core (the plan stores its due subjects with a
data-modifying statement, which PostgreSQL never runs in parallel). With more connections (the
setting `workers`), the subject table is cut into slices of consecutive keys, one per
connection, and each connection evaluates the clock of its slice, its aggregates (the last stay,
the last consultation) restricted to the slice's keys. Every connection reads the same snapshot
(`pg_export_snapshot`), so the figures are those of one moment, as with one connection.

Only integer keys are sliced, and only when every link to the subject holds integers too: a
range of text keys compares by collation, and a link column with another collation than the
key's could place a related row in another slice than its subject, whose clock would then miss
it. Slices partition the keys whatever the bounds: a bound chosen from a stale sample only makes
the slices uneven.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from retention.plan.clock import KeyRange
from retention.policy.bind import BoundPolicy
from retention.policy.expr import Params

INTEGER_KEYS = frozenset({"smallint", "integer", "bigint"})
SMALLEST = 100_000  # subjects below which one connection does it (slicing costs more than it saves)

T = TypeVar("T")


@dataclass(frozen=True)
class Slice:
    """Keys from `low` (included) to `high` (excluded); None: unbounded."""

    low: int | None = None
    high: int | None = None

    def range(self, policy: BoundPolicy, params: Params) -> KeyRange | None:
        """The slice as a condition of a query binding `params` (None: every key)."""
        if self.low is None and self.high is None:
            return None
        cast = sql.SQL(policy.key.type)
        return KeyRange(
            None if self.low is None else sql.SQL("{}::{}").format(params.add(self.low), cast),
            None if self.high is None else sql.SQL("{}::{}").format(params.add(self.high), cast),
        )


EVERY_KEY = Slice()


def sliceable(policy: BoundPolicy) -> bool:
    """True when the policy's keys and every link to them are integers (see the module)."""
    if policy.key.base_type not in INTEGER_KEYS:
        return False
    subject = policy.subject.qname
    for edge in policy.graph.edges:
        if edge.parent != subject:
            continue
        table = policy.table(edge.child)
        for name in edge.child_columns:
            column = table.columns.get(name)
            if column is None or column.base_type not in INTEGER_KEYS:
                return False
    return True


def cut(
    conn: psycopg.Connection[Any], policy: BoundPolicy, count: int, subjects: int
) -> list[Slice]:
    """`count` slices of about as many subjects each, in key order; one slice (every key) when
    the policy cannot be sliced or the table is small. `subjects`: rows of the subject table."""
    if count < 2 or subjects < SMALLEST or not sliceable(policy):
        return [EVERY_KEY]
    row = conn.execute(
        sql.SQL("SELECT percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY {}) FROM {}").format(
            sql.Identifier(policy.key.name), sql.Identifier(*policy.subject.qname)
        ),
        ([i / count for i in range(1, count)],),
    ).fetchone()
    bounds = sorted({int(b) for b in (row[0] if row and row[0] else ()) if b is not None})
    if not bounds:
        return [EVERY_KEY]
    edges: list[int | None] = [None, *bounds, None]
    return [Slice(low, high) for low, high in itertools.pairwise(edges)]


def share_snapshot(
    main: psycopg.Connection[Any], helpers: Sequence[psycopg.Connection[Any]]
) -> None:
    """Make each helper, in a transaction it has just begun, read the snapshot of `main`'s
    REPEATABLE READ transaction (which must stay open while they read)."""
    row = main.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    for conn in helpers:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(row[0])))


def side_by_side(
    tasks: Sequence[Callable[[], T]], cancel: Callable[[], None] | None = None
) -> list[T]:
    """Run the first task here and each other one on a thread of its own; their results in
    order once all have ended. The first exception raised by any is raised again then; if
    the first one fails (or is interrupted), `cancel` is called first, so that the others end
    early (e.g. their connections' statements cancelled)."""
    results: list[Any] = [None] * len(tasks)
    errors: list[BaseException | None] = [None] * len(tasks)

    def run(i: int) -> None:
        try:
            results[i] = tasks[i]()
        except BaseException as exc:  # raised again in the calling thread
            errors[i] = exc

    threads = [
        threading.Thread(
            target=contextvars.copy_context().run, args=(run, i), name=f"slice-{i}", daemon=True
        )
        for i in range(1, len(tasks))
    ]
    for thread in threads:
        thread.start()
    try:
        if tasks:
            run(0)
        if errors[0] is not None and cancel is not None:
            cancel()
    finally:
        for thread in threads:
            thread.join()
    for error in errors:
        if error is not None:
            raise error
    return results


def copy_table(
    source: psycopg.Connection[Any], target: psycopg.Connection[Any], table: sql.Composable
) -> None:
    """Append the rows of `table` on `source` (e.g. a temporary table of its session) to the
    table of the same name on `target`, in binary, without going through Python objects."""
    with (
        source.cursor().copy(sql.SQL("COPY {} TO STDOUT (FORMAT BINARY)").format(table)) as out,
        target.cursor().copy(sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(table)) as into,
    ):
        for data in out:
            into.write(data)


def cancel_all(conns: Sequence[psycopg.Connection[Any]]) -> None:
    """Cancel the statement each of `conns` is running (an interrupted slice's companions)."""
    for conn in conns:
        conn.cancel_safe()
