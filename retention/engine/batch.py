"""One batch: lock the subjects, re-check that each is still due, act, audit; one transaction.

A batch serves a pass: one phase, or several phases of a policy sharing a due date, which are
locked and re-checked once and applied one after the other, each with its own audit entry.

The plan proposes; the locked re-check decides. Subjects whose row the application holds are
skipped (`SKIP LOCKED`) and retried on a later run; a subject who came back or was put on hold
since the plan is left alone. The audit entry is written in the same transaction, so work and
entry commit together or not at all. Tables without transactions (an accepted MyISAM table)
are the exception: the batch writes its intent first, then changes them on the journal's
connection, each statement committed by itself (retention.engine.journal).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any
from uuid import UUID

from retention.actions import Batch, action_for
from retention.actions.together import apply_together
from retention.audit.trail import AuditTrail, Entry, Stored
from retention.engine import journal
from retention.engine.journal import IntentError, Journal, Replaying
from retention.engines import Connection, engine_of, sql
from retention.engines.clock import clock_sql
from retention.engines.dialect import Dialect
from retention.keys import Key
from retention.plan.clock import clock_query
from retention.policy.actions import spec_of
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.policy.expr import Params
from retention.policy.relations import QName
from retention.rows.shared import lock_named_rows, needs_guard, outside_owners
from retention.settings import Settings

if TYPE_CHECKING:
    from retention.archive.session import ArchiveSession


SHARED = "shared_with_another_record"  # the audit entry's count of subjects kept so


@dataclass(frozen=True)
class BatchContext:
    """What every batch of a phase shares."""

    policy: BoundPolicy
    phase: BoundPhase
    at: date
    holds: sql.Composable | None
    settings: Settings
    trail: AuditTrail
    run_id: UUID
    pseudonym_key: Key | None = None
    archive: ArchiveSession | None = None
    # the tables without transactions the phase changes (accepted), read live before its first
    # batch, and where its batches write their intents (retention.engine.journal); none on
    # PostgreSQL, nor where every table the phase changes has transactions
    unatomic: frozenset[QName] = frozenset()
    journal: Journal | None = None
    # the locked re-check's statement and its constant parameters, composed by the phase's
    # first batch (its keys are one parameter, the same name every batch): see `_still_due`
    rechecks: dict[bool, tuple[sql.Composed, dict[str, Any]]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )
    # subjects a batch of this phase took in because their record shares a row with one of its
    # own (retention.rows.shared): acted on there, so the batch the plan gave them skips them
    joined: set[Any] = field(default_factory=set, init=False, compare=False, repr=False)
    joined_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, compare=False, repr=False
    )


@dataclass(frozen=True)
class BatchResult:
    """What one committed batch did."""

    acted: int
    locked_elsewhere: int
    no_longer_due: int
    rows: dict[str, int] = field(default_factory=dict)
    entry: Stored | None = None
    gone: int = 0  # proposed subjects no longer in the database (e.g. an earlier phase's purge)
    shared: int = 0  # due, but kept: their record shares a row with another (rows/shared.py)


def run_batch(
    conn: Connection,
    ctxs: Sequence[BatchContext],
    keys: Sequence[Any],
    flags: Sequence[Sequence[bool]] | None = None,
    *,
    replaying: Replaying | None = None,
) -> list[BatchResult | None]:
    """Lock, re-check, act and audit `keys` in one transaction, for every phase of a pass
    (phases sharing one clock). `flags[i][j]`: key j is due for phase i (all when None).
    A phase none of whose subjects is in this batch gets None (no audit entry). When a phase
    changes a table without transactions, the batch's intent is written before it acts and
    deleted at its commit; `replaying`: the batch completes that intent instead."""
    first = ctxs[0]
    session = engine_of(conn).session
    if replaying is None and first.joined:
        keys, flags = _not_taken_in(first, keys, flags)
        if not keys:
            return [None] * len(ctxs)
    with conn.transaction():
        # also the planner's settings for a batch's keyed lookups (the engine's; PostgreSQL:
        # index probes priced as cached pages, no parallel workers), for this transaction only
        session.batch_limits(
            conn,
            lock_timeout_ms=first.settings.lock_timeout_ms,
            statement_timeout_ms=first.settings.statement_timeout_ms,
        )
        locked = _lock(conn, first.policy, keys)
        gone = _gone(conn, first.policy, keys, locked)
        if replaying is None or replaying.recheck:
            ends = _still_due(conn, first, locked)  # subject -> end of retention (archive only)
        else:  # decided under lock by the batch cut short: completed, except what is held now
            replaying.held.extend(k for k in locked if k in _held(conn, first, locked))
            ends = {k: None for k in [*locked, *gone] if k not in replaying.held}
        if replaying is not None and len(locked) + len(gone) < len(keys):
            raise IntentError(
                f"intent {replaying.intent_id}: {len(keys) - len(locked) - len(gone)} "
                "subject(s) locked by the application; the next run completes it"
            )
        # records sharing a row go together or not at all (rows/shared.py)
        shared = set[Any]()
        if replaying is None and ends and needs_guard(first.policy, [c.phase for c in ctxs]):
            shared, keys, locked, flags = _closed(conn, ctxs, ends, keys, locked, flags)
        due = set(ends)
        aside = _aside(ctxs)
        # a subject's digest is the same for every phase of the pass: computed once
        digests = {k: first.trail.subject_digest(first.policy.name, k) for k in due}
        chosen: list[tuple[int, Batch, int, int, int]] = []
        for i, ctx in enumerate(ctxs):
            mine = (
                set(keys)
                if flags is None
                else {k for k, f in zip(keys, flags[i], strict=True) if f}
            )
            if not mine:  # none of this batch's subjects is due for that phase
                continue
            mine_locked = [k for k in locked if k in mine]
            mine_gone = len(mine & gone)
            mine_due = [k for k in mine_locked if k in due]
            if replaying is not None and not replaying.recheck:
                # a purge completed: its subjects already deleted too; every one was locked or
                # gone, those not due are held
                mine_due += [k for k in keys if k in mine and k in gone and k in due]
                mine_locked, mine_gone = [*mine_locked, *(mine & gone)], 0
            batch = Batch(
                ctx.policy,
                ctx.phase,
                mine_due,
                ctx.pseudonym_key,
                ctx.archive,
                ends={k: ends[k] for k in mine_due},
                digests={k: digests[k] for k in mine_due},
                detail=replaying.detail if replaying else _shared_detail(mine_locked, shared),
                kept=replaying.kept_rows() if replaying else {},
                aside=aside,
            )
            chosen.append((i, batch, len(mine) - mine_gone, len(mine_locked), mine_gone))
        batches = [batch for _, batch, *_ in chosen]
        if replaying is None:
            acting = [ctxs[i] for i, *_ in chosen]
            unatomic = frozenset[QName]().union(*(c.unatomic for c in acting))
            writer = next((c.journal for c in acting if c.journal), None)
            intent = journal.begin(conn, first.run_id, batches, unatomic, writer)
        else:
            intent = replaying.intent_id
        done = _apply(conn, batches)
        held = replaying.held if replaying else []
        journal.end(conn, first.settings.schema_name, intent, held)
        # the audit trail's lock is held by another batch until it commits (batches side by
        # side): waiting for it is not contention with the application, whose rows this
        # batch already holds; statement_timeout still bounds the wait
        session.lock_timeout(conn, 0)
        results: list[BatchResult | None] = [None] * len(ctxs)
        for (i, batch, proposed, n_locked, n_gone), rows in zip(chosen, done, strict=True):
            digested = tuple(sorted(digests[k] for k in batch.keys))
            results[i] = _audit(conn, ctxs[i], batch, rows, proposed, n_locked, n_gone, digested)
        return results


def _aside(ctxs: Sequence[BatchContext]) -> journal.Aside | None:
    """Where the pass's tables without transactions are changed: the journal's connection."""
    unatomic = frozenset[QName]().union(*(c.unatomic for c in ctxs))
    writer = next((c.journal for c in ctxs if c.journal), None)
    return journal.Aside(writer, unatomic) if unatomic and writer else None


def _closed(
    conn: Connection,
    ctxs: Sequence[BatchContext],
    ends: dict[Any, Any],
    keys: Sequence[Any],
    locked: list[Any],
    flags: Sequence[Sequence[bool]] | None,
) -> tuple[set[Any], list[Any], list[Any], list[list[bool]] | None]:
    """The batch closed over shared rows (`_close_over_shared`): the subjects kept, and the
    keys, locked keys and flags with the subjects taken in (due for every phase of the pass:
    its phases share one clock, retention.plan.passes.group_phases)."""
    shared, added = _close_over_shared(conn, ctxs[0], ends)
    more = None if flags is None else [[*f, *(True for _ in added)] for f in flags]
    return shared, [*keys, *added], [*locked, *added], more


def _not_taken_in(
    ctx: BatchContext, keys: Sequence[Any], flags: Sequence[Sequence[bool]] | None
) -> tuple[list[Any], list[list[bool]] | None]:
    """`keys` (and their `flags`) without the subjects an earlier batch of the phase took in
    and acted on (`BatchContext.joined`)."""
    with ctx.joined_lock:
        taken = ctx.joined.intersection(keys)
    left = [i for i, k in enumerate(keys) if k not in taken]
    return [keys[i] for i in left], (
        None if flags is None else [[f[i] for i in left] for f in flags]
    )


def _close_over_shared(
    conn: Connection, ctx: BatchContext, ends: dict[Any, Any]
) -> tuple[set[Any], list[Any]]:
    """Make the batch's due subjects (`ends`, changed in place) a closed set: the subjects
    outside it whose records share a row with one of them are locked and re-checked here,
    joining the batch when due (up to `batch_size` subjects, or twice the batch and 100
    more); otherwise the batch's subjects sharing with them are kept. Every pass adds or
    keeps someone, or the search ends keeping every subject it still names: it always ends.
    Returns (kept, added)."""
    policy = ctx.policy
    kept: set[Any] = set()
    added: list[Any] = []
    most = max(2 * len(ends) + 100, ctx.settings.batch_size)
    while ends:
        lock_named_rows(conn, policy, list(ends))
        links = outside_owners(conn, policy, list(ends))
        if not links:
            break
        outside = {o for _, o in links}
        candidates = outside - kept - set(ends)  # one kept already stays out
        joined: dict[Any, Any] = {}
        if candidates and len(ends) + len(candidates) <= most:
            joined = _still_due(conn, ctx, _lock(conn, policy, sorted(candidates, key=repr)))
            joined = {k: v for k, v in joined.items() if k in candidates}
            ends.update(joined)
            added += joined
        leaving = [k for k, other in links if other not in joined and k in ends]
        if not joined and not leaving:  # named otherwise than held (never expected): keep all
            leaving = list(ends)
        for k in leaving:
            ends.pop(k, None)
            kept.add(k)
        added = [k for k in added if k in ends]
    with ctx.joined_lock:
        ctx.joined.update(added)
    return kept, added


def _shared_detail(locked: list[Any], shared: set[Any]) -> dict[str, Any]:
    """The audit entry's count of subjects kept because their record shares a row."""
    count = sum(1 for k in locked if k in shared)
    return {SHARED: count} if count else {}


def _apply(conn: Connection, batches: list[Batch]) -> list[dict[str, int]]:
    """Rows changed per table, per phase. The column phases of a pass rewrite each row once."""
    if len(batches) > 1 and all(spec_of(b.phase.action).together for b in batches):
        return apply_together(conn, batches)
    return [action_for(b.phase.action).apply(conn, b) if b.keys else {} for b in batches]


def _audit(
    conn: Connection,
    ctx: BatchContext,
    batch: Batch,
    rows: dict[str, int],
    proposed: int,
    locked: int,
    gone: int,
    digests: tuple[str, ...],
) -> BatchResult:
    """The phase's audit entry for this batch, in its transaction."""
    due = len(batch.keys)
    shared = int(batch.detail.get(SHARED, 0))
    entry = ctx.trail.append(
        conn,
        Entry(
            event="batch",
            outcome="done",
            run_id=ctx.run_id,
            policy=ctx.policy.name,
            policy_sha256=ctx.policy.loaded.sha256,
            phase=ctx.phase.name,
            action=ctx.phase.action,
            rows=rows,
            subjects=due,
            subject_digests=digests,
            key_id=ctx.pseudonym_key.id if ctx.pseudonym_key and _uses_key(ctx) else None,
            detail={
                "proposed": proposed + gone,
                "locked_elsewhere": proposed - locked,
                "no_longer_due": locked - due - shared,
                "gone": gone,
                **batch.detail,  # e.g. the archive's file name and SHA-256
            },
        ),
    )
    return BatchResult(due, proposed - locked, locked - due - shared, rows, entry, gone, shared)


def _gone(
    conn: Connection, policy: BoundPolicy, keys: Sequence[Any], locked: list[Any]
) -> set[Any]:
    """The keys not locked that no longer exist: the due subjects are proposed by the plan,
    and an earlier phase of the run may have purged or archived some of them since."""
    missed = set(keys) - set(locked)
    if not missed:
        return set()
    query, params = _subjects(engine_of(conn).dialect, policy, list(missed), locking=False)
    present = {row[0] for row in conn.execute(query, params).fetchall()}
    return missed - present


def _lock(conn: Connection, policy: BoundPolicy, keys: Sequence[Any]) -> list[Any]:
    query, params = _subjects(engine_of(conn).dialect, policy, keys, locking=True)
    return [row[0] for row in conn.execute(query, params).fetchall()]


def _subjects(
    dialect: Dialect, policy: BoundPolicy, keys: Sequence[Any], *, locking: bool
) -> tuple[sql.Composed, dict[str, object]]:
    """`SELECT key FROM subject WHERE key = ANY(<keys>)` in key order (with `locking`: `FOR
    UPDATE SKIP LOCKED`), and its parameters. The keys are typed as the key column (on
    PostgreSQL sent in binary: strings arrive as text[], and char(n) = text ignores padding)."""
    params = Params(prefix="k")
    query = dialect.select_keys(
        sql.Identifier(*policy.subject.qname), policy.key, params, keys, skip_locked=locking
    )
    return query, params.values


def _still_due(conn: Connection, ctx: BatchContext, locked: list[Any]) -> dict[Any, Any]:
    """The locked subjects still due, in key order; for an archive phase, with their end of
    retention (computed by the same statement: it groups the archive)."""
    if not locked:
        return {}
    archive = ctx.phase.action == "archive"
    params = Params(prefix="b")
    # typed as the key column (PostgreSQL: binary strings arrive as text[], and char(n) =
    # text ignores the padding); one parameter whatever the number of keys
    keys = engine_of(conn).dialect.key_array(params, locked, ctx.policy.key)
    composed = ctx.rechecks.get(archive)
    if composed is None:  # the phase's first batch: composed once (18 ms of CPU per batch)
        clock = clock_query(
            ctx.policy,
            ctx.phase,
            ctx.at,
            holds_table=ctx.holds,
            keys=keys,
            with_retain_until=archive,
            dialect=clock_sql(conn),
        )
        ends = sql.SQL("retain_until") if archive else sql.SQL("NULL")
        recheck = sql.SQL("SELECT k, {} FROM ({}) AS c WHERE is_due ORDER BY k").format(
            ends, clock.query
        )
        composed = ctx.rechecks[archive] = (recheck, dict(clock.params))
    statement, constants = composed
    rows = conn.execute(statement, {**constants, **params.values}).fetchall()
    return dict(rows)


def _held(conn: Connection, ctx: BatchContext, locked: list[Any]) -> set[Any]:
    """Of the locked subjects, those under a legal hold now (the clock's own reading)."""
    if not locked or ctx.holds is None:
        return set()
    params = Params(prefix="h")
    clock = clock_query(
        ctx.policy,
        ctx.phase,
        ctx.at,
        holds_table=ctx.holds,
        keys=engine_of(conn).dialect.key_array(params, locked, ctx.policy.key),
        dialect=clock_sql(conn),
    )
    query = sql.SQL("SELECT k FROM ({}) AS c WHERE held").format(clock.query)
    return {row[0] for row in conn.execute(query, {**clock.params, **params.values}).fetchall()}


def _uses_key(ctx: BatchContext) -> bool:
    """The pseudonymisation key is recorded (by its id) when the action used it."""
    return ctx.pseudonym_key is not None and ctx.phase.needs_pseudonym_key
