"""Slices: the clock of a large subject table evaluated on several connections at once.

The plan of a run and the exposure snapshot after it each evaluate the clock of every subject:
one statement, which PostgreSQL runs on one core (the plan stores its due subjects with a
data-modifying statement, which PostgreSQL never runs in parallel). With more connections (the
setting `workers`), the subject table is cut into slices of consecutive keys, one per
connection (on MariaDB more where one slice's aggregates would not fit in memory, see
`Session.slice_bound`: each connection then takes the next slice left), and each connection
evaluates the clock of its slices, its aggregates (the last stay, the last consultation)
restricted to the slice's keys. On PostgreSQL every connection reads the
same snapshot (`pg_export_snapshot`), so the figures are those of one moment, as with one
connection. MariaDB/MySQL share none: each connection's statement reads its own moment, as the
statements of one connection already do there (retention.engines.snapshots); the slices still
partition the keys, and each batch re-checks its subjects under lock.

Only NOT NULL integer keys are sliced, and only when every link to the subject holds integers: a
range of text keys compares by collation, and a link column with another collation than the
key's could place a related row in another slice than its subject, whose clock would then miss
it. Slices partition the keys whatever the bounds (read from the same snapshot; uneven bounds
would only make uneven slices). A helper reads the snapshot only while its slices are computed,
then rolls back; one that cannot is left out and its slice computed on the run's connection.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from loguru import logger

from retention.engines import Connection, engine_of, errors, sql
from retention.engines.dialect import Dialect
from retention.policy.bound import BoundPolicy
from retention.policy.expr import Params
from retention.rows.subjects import KeyRange
from retention.threads import CANCELLED_WAIT, wait_all

# integer types, by their base type in either engine's catalogue (MariaDB: `int`, `mediumint`...)
INTEGER_KEYS = frozenset({"tinyint", "smallint", "mediumint", "integer", "int", "bigint"})
SMALLEST = 100_000  # subjects below which one connection does it (slicing costs more than it saves)

T = TypeVar("T")


@dataclass(frozen=True)
class Slice:
    """Keys from `low` (included) to `high` (excluded); None: unbounded."""

    low: int | None = None
    high: int | None = None

    def range(self, policy: BoundPolicy, params: Params, dialect: Dialect) -> KeyRange | None:
        """The slice as a condition of a query binding `params` (None: every key)."""
        if self.low is None and self.high is None:
            return None
        return KeyRange(
            None if self.low is None else dialect.cast(params.add(self.low), policy.key),
            None if self.high is None else dialect.cast(params.add(self.high), policy.key),
        )


EVERY_KEY = Slice()


def sliceable(policy: BoundPolicy) -> bool:
    """True when the policy's keys and every link to them are integers (see the module)."""
    if policy.key.base_type not in INTEGER_KEYS or not policy.key.not_null:
        return False  # a NULL key (a unique key may hold some) lies in no range
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


def worth_slicing(conn: Connection, policies: Sequence[BoundPolicy]) -> bool:
    """True when some policy could be sliced and its subject table may be large (the
    planner's estimate; a table never analysed counts as large): otherwise no helper
    connection is worth opening."""
    tables = [p.subject.qname for p in policies if sliceable(p)]
    return engine_of(conn).catalogue.may_be_large(conn, tables, SMALLEST)


def cut(conn: Connection, policy: BoundPolicy, count: int, subjects: int) -> list[Slice]:
    """`count` slices of about as many subjects each, in key order; one slice (every key) when
    the policy cannot be sliced or the table is small. `subjects`: rows of the subject table."""
    if count < 2 or subjects < SMALLEST or not sliceable(policy):
        return [EVERY_KEY]
    row = conn.execute(
        sql.SQL("SELECT {} FROM {}").format(
            _bounds(conn, policy, count), sql.Identifier(*policy.subject.qname)
        )
    ).fetchone()
    return _slices(row[0] if row else None)


def counted_cut(conn: Connection, policy: BoundPolicy, count: int) -> tuple[int, list[Slice]]:
    """The rows of the policy's subject table, and its slices as `cut` makes them, from one
    scan of the table (counting it, then reading the bounds, read it twice: 0.1-0.3 s at
    189,728 patients after a run, whose updates leave index-only scans visiting the heap).
    A table that turns out smaller than SMALLEST is not sliced, its keys sorted for nothing:
    about 10 ms per 100,000 keys, and only when another table is large enough for helpers.
    Where the engine bounds a slice's subjects (`Session.slice_bound`) and `count` slices
    would hold more, a second statement reads the bounds of more slices, a multiple of
    `count`; the bounds cut the key range evenly (MariaDB's `quantiles`), so keys in far
    apart blocks make uneven slices, one of which may exceed the bound (then slower, not
    wrong)."""
    table = sql.Identifier(*policy.subject.qname)
    if count < 2 or not sliceable(policy):
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
        return (int(row[0]) if row else 0), [EVERY_KEY]
    row = conn.execute(
        sql.SQL("SELECT count(*), {} FROM {}").format(_bounds(conn, policy, count), table)
    ).fetchone()
    subjects = int(row[0]) if row else 0
    if subjects < SMALLEST:
        return subjects, [EVERY_KEY]
    bound = engine_of(conn).session.slice_bound(conn)
    if bound is not None and -(-subjects // bound) > count:
        # more slices than connections: as many for each (the last connection to end its
        # slices ends the step)
        return subjects, cut(conn, policy, -(-subjects // (bound * count)) * count, subjects)
    return subjects, _slices(row[1] if row else None)


def _bounds(conn: Connection, policy: BoundPolicy, count: int) -> sql.Composable:
    """The keys that cut the subjects into `count` slices (the engine's `quantiles`)."""
    return engine_of(conn).dialect.quantiles(sql.Identifier(policy.key.name), count)


def _slices(found: Sequence[int | str | None] | str | None) -> list[Slice]:
    """The slices between the bounds found, an array or a JSON array's text (every key when
    none)."""
    if isinstance(found, str):
        found = json.loads(found)
    bounds = sorted({int(b) for b in found or () if b is not None})
    if not bounds:
        return [EVERY_KEY]
    edges: list[int | None] = [None, *bounds, None]
    return [Slice(low, high) for low, high in itertools.pairwise(edges)]


@dataclass(frozen=True)
class Helpers:
    """Idle connections to the run's database, the snapshot they are to read (exported by the
    main connection's transaction) and their work_mem."""

    conns: list[Connection]
    snapshot: str
    work_mem_mb: int


def spread(
    main: Connection,
    helpers: Helpers,
    slices: list[Slice],
    work: Callable[[Connection, Iterable[Slice]], T],
    tables: Sequence[sql.Composable],
) -> list[T]:
    """`work(conn, its slices)` on the main connection and on each helper that joins the
    snapshot, at once: one slice each first, then each takes the next slice left as it ends
    one (more slices than connections where the engine bounds a slice's size, see
    `Session.slice_bound`; the main connection takes the slices of helpers that could not
    join); then the rows the helpers wrote to `tables` (temporary tables that `work` made on
    each connection) are appended to those of the main connection. The results, the main
    connection's first."""
    with reading(helpers.snapshot, helpers.conns[: len(slices) - 1], helpers.work_mem_mb) as ready:
        rest = _Queue(slices[1 + len(ready) :])

        def task(conn: Connection, first: Slice) -> T:
            try:
                return work(conn, rest.after(first))
            except BaseException:  # the step fails: the others take no further slice
                rest.close()
                raise

        def cancel() -> None:
            rest.close()
            cancel_all(ready)

        found = side_by_side(
            [
                partial(task, main, slices[0]),
                *(partial(task, h, s) for h, s in zip(ready, slices[1:], strict=False)),
            ],
            cancel=cancel,
        )
        for helper in ready:
            for table in tables:
                copy_table(helper, main, table)
    return found


class _Queue:
    """Slices handed out one at a time to the connections that end theirs first; closed
    when the step fails or is interrupted (no connection takes another slice then)."""

    def __init__(self, slices: Sequence[Slice]) -> None:
        self._left = iter(slices)
        self._lock = threading.Lock()
        self._closed = False

    def after(self, first: Slice) -> Iterator[Slice]:
        """`first`, then the slices no other connection has taken yet, one at a time."""
        yield first
        while True:
            with self._lock:
                taken = None if self._closed else next(self._left, None)
            if taken is None:
                return
            yield taken

    def close(self) -> None:
        with self._lock:
            self._closed = True


def export_snapshot(main: Connection) -> str:
    """The snapshot of `main`'s REPEATABLE READ transaction, for helpers to read while that
    transaction stays open."""
    return engine_of(main).snapshots.export(main)


@contextmanager
def reading(
    snapshot: str, helpers: Sequence[Connection], work_mem_mb: int
) -> Iterator[list[Connection]]:
    """The helpers, each in a transaction reading `snapshot` for the block's time only (an
    idle transaction held longer would meet idle_in_transaction_session_timeout), rolled back
    after it: what they wrote was copied to the main connection. A helper that cannot begin
    one is left out, with a warning; the caller computes its slice itself."""
    ready: list[Connection] = []
    try:
        for conn in helpers:
            engine = engine_of(conn)
            try:
                engine.snapshots.join(conn, snapshot)
                engine.session.whole_tables(conn, work_mem_mb)
            except errors.Error as exc:
                logger.warning(
                    "a helper connection cannot read the run's snapshot ({}); its slice is "
                    "computed on the run's connection",
                    type(exc).__name__,
                )
                _roll_back(conn)
                continue
            ready.append(conn)
        yield ready
    except KeyboardInterrupt:
        ready = []  # a cancelled statement may still be ending under its thread: leave it
        raise
    finally:
        for conn in ready:
            _roll_back(conn)


def _roll_back(conn: Connection) -> None:
    try:
        if not conn.closed and engine_of(conn).session.in_transaction(conn):
            conn.execute("ROLLBACK")
    except errors.Error as exc:  # a helper lost: the work it did was copied, or failed
        logger.debug("helper connection not rolled back: {}", type(exc).__name__)


def side_by_side(
    tasks: Sequence[Callable[[], T]], cancel: Callable[[], None] | None = None
) -> list[T]:
    """Run the first task here and each other one on a thread of its own; their results in
    order once all have ended. The first exception raised by any is raised again then. If
    the first one fails or this thread is interrupted, `cancel` is called (e.g. cancelling
    the others' statements) and they are waited for, at most CANCELLED_WAIT seconds once
    interrupted."""
    results: list[Any] = [None] * len(tasks)
    errors: list[BaseException | None] = [None] * len(tasks)
    ended = [threading.Event() for _ in tasks]

    def run(i: int) -> None:
        try:
            results[i] = tasks[i]()
        except BaseException as exc:  # raised again in the calling thread
            errors[i] = exc
        finally:
            ended[i].set()

    try:
        for i in range(1, len(tasks)):
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(run, i),
                name=f"slice-{i}",
                daemon=True,
            ).start()
        if tasks:
            run(0)
        if errors[0] is not None:
            _cancel(cancel)
        wait_all(ended[1:])
    except BaseException:
        _cancel(cancel)
        wait_all(ended[1:], CANCELLED_WAIT)
        raise
    for error in errors:
        if error is not None:
            raise error
    return results


def _cancel(cancel: Callable[[], None] | None) -> None:
    if cancel is not None:
        cancel()


def copy_table(source: Connection, target: Connection, table: sql.Composable) -> None:
    """Append the rows of `table` on `source` (e.g. a temporary table of its session) to the
    table of the same name on `target`, in binary, without going through Python objects."""
    engine_of(target).bulk.copy_between(source, target, table)


def cancel_all(conns: Sequence[Connection]) -> None:
    """Cancel the statement each of `conns` is running (an interrupted slice's companions);
    a cancel that fails is logged and the others are still sent."""
    for conn in conns:
        try:
            conn.cancel_safe()
        except Exception as exc:  # the error that made us cancel matters more
            logger.debug("cancel not sent to a helper connection: {}", type(exc).__name__)
