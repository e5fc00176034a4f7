"""Intents left by batches cut short on tables without transactions, completed first.

A batch whose phase changes a table without transactions writes its intent before it acts
(retention.engine.journal); a crash, `kill -9` or a ROLLBACK before its commit leaves the intent.
A run, once it holds the run lock and before its plan, reads every intent left and:

- refuses to run when an intent's policy is not loaded or is another version (SHA-256) than the
  one that wrote it: what the batch decided cannot be completed by guessing. The operator
  restores that version of the policy file, or, having reviewed the database, releases the
  intent (`retention intents release`, audited);
- otherwise completes each, oldest first, in one batch transaction that deletes the intent
  with its audit entry (event `batch`, its detail saying which intent of which run it
  completes). A purge is completed for every subject of its intent without re-checking that it
  is due: that was decided under lock when the intent was written, its subject row may be gone
  already (a subject table without transactions), and the half-done record is the worse state,
  orphan rows that no later run reaches. Its link values kept in the intent find the rows below
  parent rows already deleted. Subjects put under a legal hold since are the exception: a hold
  preserves what is there; they stay in the intent, completed once released. Column actions
  (erase, pseudonymize, generalize, scrub) are re-checked as any batch: their subjects' rows are
  all still reachable, and each action leaves rows already in their final state alone.
- a subject of an intent locked by the application makes the run stop: the next one completes
  it (nothing else may act on those records before).

The plan is then computed again: it sees what the completed intents changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from loguru import logger

from retention.audit.trail import AuditTrail, Entry, Stored, mirror
from retention.db import connection_lost
from retention.engine.batch import BatchContext, run_batch
from retention.engine.gates import changed_tables
from retention.engine.journal import (
    TABLE,
    IntentError,
    Journal,
    Replaying,
    decode,
    kept_values,
)
from retention.engines import Connection, engine_of, errors, sql
from retention.engines.errors import describe_error
from retention.errors import UsageError
from retention.plan.model import LeftIntent, Plan
from retention.policy.bound import BoundPhase, BoundPolicy

ContextOf = Callable[[BoundPolicy, BoundPhase], BatchContext]


@dataclass(frozen=True)
class Intent:
    """What a batch cut short had decided (keys and link values never shown)."""

    intent_id: int
    run_id: str
    policy: str
    policy_sha256: str
    phases: tuple[str, ...]
    keys: dict[str, list[Any]]
    values: list[dict[str, Any]]
    created_at: datetime

    @property
    def subjects(self) -> int:
        return len({k for found in self.keys.values() for k in found})

    def describe(self) -> str:
        """Counts and names only."""
        return self.summary().describe()

    def summary(self) -> LeftIntent:
        """What a plan shows of it."""
        return LeftIntent(
            self.intent_id,
            self.run_id,
            self.policy,
            self.phases,
            self.subjects,
            self.created_at,
        )


# The migration that creates the journal (migrations/010_intents.sql of each engine)
JOURNAL_MIGRATION = 10


def pending(conn: Connection, schema: str) -> list[Intent]:
    """The intents left, oldest first (none before the tool's schema has the journal). A
    journal that its migration created but that this account cannot see (dropped, or no
    privilege on it) is an error: `intents list` said every batch had committed, and a run
    would not complete the batches cut short."""
    catalogue = engine_of(conn).catalogue
    if not catalogue.table_exists(conn, schema, TABLE):
        if (
            catalogue.table_exists(conn, schema, "schema_version")
            and conn.execute(
                sql.SQL("SELECT 1 FROM {} WHERE version = %s").format(
                    sql.Identifier(schema, "schema_version")
                ),
                (JOURNAL_MIGRATION,),
            ).fetchone()
        ):
            raise IntentError(
                f"the intents journal {schema}.{TABLE} is missing, or this account cannot read "
                "it, while the tool's schema created it: the batches cut short on tables "
                "without transactions cannot be known",
                hint=f"grant SELECT on {schema}.{TABLE} to this account (`retention grants`); "
                "if it was dropped, restore it from a backup",
            )
        return []
    rows = conn.execute(
        sql.SQL(
            "SELECT intent_id, run_id, policy, policy_sha256, phases, subject_keys, "
            "link_values, created_at FROM {} ORDER BY intent_id"
        ).format(sql.Identifier(schema, TABLE))
    ).fetchall()
    return [
        Intent(
            int(r[0]),
            str(r[1]),
            str(r[2]),
            str(r[3]),
            tuple(decode(r[4])),
            dict(decode(r[5])),
            list(decode(r[6])),
            r[7],
        )
        for r in rows
    ]


def with_intents(conn: Connection, schema: str, plan: Plan) -> Plan:
    """`plan` with the intents left, which a run completes before it (`plan`, `run
    --dry-run` and the plan a run shows for review say so)."""
    return replace(plan, intents=tuple(i.summary() for i in pending(conn, schema)))


def refuse_unknown(
    intents: Sequence[Intent], policies: Sequence[BoundPolicy], *, pseudonym_key: bool
) -> None:
    """Refuse the run (:class:`IntentError`, nothing changed) when an intent's policy is not
    loaded or is another version, or when its phases need the pseudonym key and the run has
    none (it was restricted to policies that do not)."""
    by_name = {p.name: p for p in policies}
    problems = []
    for intent in intents:
        policy = by_name.get(intent.policy)
        if policy is None:
            problems.append(f"{intent.describe()}: policy {intent.policy} is not loaded")
        elif policy.loaded.sha256 != intent.policy_sha256:
            problems.append(
                f"{intent.describe()}: policy {intent.policy} was changed since (SHA-256 "
                f"{intent.policy_sha256} then, {policy.loaded.sha256} now)"
            )
        elif not pseudonym_key and any(
            policy.phase(name).needs_pseudonym_key for name in intent.phases
        ):
            problems.append(f"{intent.describe()}: needs pseudonym_key (run it without --policy)")
    if problems:
        first = intents[0].intent_id
        raise IntentError(
            "batches cut short on tables without transactions must be completed before "
            "anything else, with the policy that decided them: " + "; ".join(problems),
            hint=(
                "restore that version of the policy file (the SHA-256 above), or, once the "
                "database is reviewed, release the intent: 'retention intents release "
                f"--intent {first} --reason TEXT'"
            ),
        )


def replay(
    conn: Connection,
    intents: Sequence[Intent],
    policies: Sequence[BoundPolicy],
    context: ContextOf,
    journal: Journal | None = None,
) -> int:
    """Complete every intent (checked by :func:`refuse_unknown`), oldest first, each in one
    batch transaction on `conn`, its tables without transactions changed on the `journal`'s
    connection as any batch's; the subjects completed."""
    by_name = {p.name: p for p in policies}
    done = 0
    for intent in intents:
        logger.warning("an earlier batch was cut short: completing {}", intent.describe())
        done += _complete(conn, intent, by_name[intent.policy], context, journal)
    return done


def _complete(
    conn: Connection,
    intent: Intent,
    policy: BoundPolicy,
    context: ContextOf,
    journal: Journal | None,
) -> int:
    ctxs = [_aside(conn, context(policy, policy.phase(name)), journal) for name in intent.phases]
    keys = list(dict.fromkeys(k for name in intent.phases for k in intent.keys[name]))
    mine = [set(intent.keys[name]) for name in intent.phases]
    flags = [[k in phase for k in keys] for phase in mine]
    purge = ctxs[0].phase.action == "purge"
    replaying = Replaying(
        intent.intent_id,
        intent.run_id,
        recheck=not purge,
        kept=kept_values(policy, intent.values) if purge else {},
    )
    try:
        results = run_batch(conn, ctxs, keys, flags, replaying=replaying)
    except errors.OperationalError as exc:
        if connection_lost(conn, exc):
            raise
        raise _failed(intent, exc) from None
    except errors.Error as exc:
        raise _failed(intent, exc) from None
    acted = 0
    for result in results:
        if result is not None and result.entry is not None:
            mirror(result.entry)
            acted = max(acted, result.acted)
    held = len(replaying.held)
    logger.warning(
        "intent {} completed: {} subject(s){}",
        intent.intent_id,
        acted,
        f", {held} kept under a legal hold (completed once released)" if held else "",
    )
    return acted


def _aside(conn: Connection, ctx: BatchContext, journal: Journal | None) -> BatchContext:
    """The phase's context with its tables without transactions now (read live, as the
    phase's gate does), changed on the journal's connection."""
    if journal is None:
        return ctx
    changed, live = changed_tables(conn, ctx.policy, ctx.phase)
    unatomic = frozenset(q for q in changed if not live.get(q, False))
    return replace(ctx, unatomic=unatomic, journal=journal) if unatomic else ctx


def _failed(intent: Intent, exc: Exception) -> IntentError:
    return IntentError(
        f"{intent.describe()} could not be completed: {describe_error(exc)}",
        hint="nothing of it changed; the next run tries again",
    )


def release(
    conn: Connection, schema: str, trail: AuditTrail, intent_id: int, reason: str
) -> tuple[Intent, Stored]:
    """Delete an intent without completing it (the operator reviewed the database), audited as
    `intent_released` with its subjects' keyed digests, in one transaction; the caller holds
    the run lock (no run completes it meanwhile)."""
    found = [i for i in pending(conn, schema) if i.intent_id == intent_id]
    if not found:
        raise UsageError(
            f"no intent {intent_id} is left", hint="'retention intents list' shows those left"
        )
    intent = found[0]
    keys = {k for phase in intent.keys.values() for k in phase}
    with conn.transaction():
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE intent_id = %s").format(sql.Identifier(schema, TABLE)),
            (intent_id,),
        )
        stored = trail.append(
            conn,
            Entry(
                event="intent_released",
                outcome="released",
                policy=intent.policy,
                policy_sha256=intent.policy_sha256,
                phase=", ".join(intent.phases),
                subjects=len(keys),
                subject_digests=tuple(sorted(trail.subject_digest(intent.policy, k) for k in keys)),
                detail={
                    "intent": intent.intent_id,
                    "run": intent.run_id,
                    "written_at": f"{intent.created_at:%Y-%m-%dT%H:%M:%S}Z",
                    "reason": reason,
                },
            ),
        )
    return intent, stored
