"""Gates: what must hold before a run, or a phase of it, changes anything.

- One run at a time: the run lock (retention.store.lock), held from the checks to the
  exposure snapshot after the run.
- Before the run: the database and host clocks agree, each phase's due subjects stay within
  the limits (or the override is audited with its reason); privileges and coverage gaps are
  reported (warnings, retention.engine.safety).
- Before a destructive phase's first batch: enough approvals of the policy's version, and
  every class of the record's polymorphic columns still mapped or declared unrelated.
- Before any phase's first batch: every table it changes still has transactions, or the
  phase accepts it (`accept_non_transactional`), read live; the accepted ones are kept for
  its batches, which then write intents (retention.engine.journal). An archive phase is
  refused there (an interrupted archive batch's file is not completed by an intent).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from loguru import logger

from retention.audit.approvals import DESTRUCTIVE, approval_state, rules_of
from retention.discovery.coverage import current_gaps
from retention.engine.outcome import PhaseResult, RunOptions
from retention.engine.record import RunRecord
from retention.engine.safety import LimitExceeded, limit_violations, refuse_large
from retention.engines import Connection, engine_of
from retention.plan.model import Plan
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.policy.checks.cascades import phase_writes
from retention.policy.checks.transactions import not_atomic, unaccepted
from retention.policy.data_checks import UnmappedClasses, unmapped_classes
from retention.policy.relations import QName
from retention.settings import Settings
from retention.store import lock


@contextmanager
def run_lock(
    conn: Connection, schema: str, wait_seconds: float, stop: threading.Event | None = None
) -> Iterator[None]:
    """The run lock while the block runs (:class:`RunInProgressError` when another run
    holds it after `wait_seconds`, :class:`StoppedWaitingError` when `stop` is set while
    waiting); always released."""
    lock.acquire(conn, schema, wait_seconds, stop)
    try:
        yield
    finally:
        lock.release(conn)


def over_limits(
    plan: Plan,
    settings: Settings,
    allow_large: bool,
    refused: Callable[[list[LimitExceeded]], None] | None = None,
) -> list[LimitExceeded]:
    """The phases above the limits; refused (:class:`SafetyError`) unless `allow_large`,
    after `refused` (the run's audit entry of the refusal)."""
    violations = limit_violations(plan, settings)
    if violations and not allow_large:
        if refused is not None:
            refused(violations)
        refuse_large(violations)
    return violations


def record_refusal(record: RunRecord, run_id: uuid.UUID, violations: list[LimitExceeded]) -> None:
    """A run refused by the limits, before its start: nothing changed, and the trail says
    which phases went beyond which limit (counts only), so that a refused night is seen."""
    detail = {"phases": [v.describe() for v in violations]}
    record.entry("limits_refused", "refused", run_id, detail=detail)


def record_override(
    record: RunRecord, run_id: uuid.UUID, options: RunOptions, violations: list[LimitExceeded]
) -> None:
    """The limits went beyond with --allow-large: the audit says by how much, and why."""
    phases = [v.describe() for v in violations]
    detail = {"reason": options.reason or "", "phases": phases}
    record.entry("limit_override", "allowed", run_id, detail=detail)


def coverage_gaps(conn: Connection, schema: str, policies: list[BoundPolicy]) -> list[str] | None:
    """Personal columns of the last scan that no policy covers (logged at every run)."""
    gaps = current_gaps(conn, schema, policies)
    if gaps:
        logger.warning(
            "{} personal column(s) covered by no policy: {}",
            len(gaps),
            ", ".join(g.label for g in gaps),
        )
    return None if gaps is None else [g.render() for g in gaps]


def changed_tables(
    conn: Connection, policy: BoundPolicy, phase: BoundPhase
) -> tuple[set[QName], dict[QName, bool]]:
    """The tables a phase changes, and whether each has transactions now (read live: a table
    may have been converted since the policies were bound)."""
    changed = phase_writes(policy.catalog, policy.graph, phase).tables
    return changed, engine_of(conn).catalogue.transactional(conn, changed)


class PhaseGates:
    """Before a phase's first batch, in one run: for a destructive phase approvals, then
    classes; for every phase, the transactions of the tables it changes."""

    def __init__(self, conn: Connection, settings: Settings, record: RunRecord) -> None:
        self.conn = conn
        self.settings = settings
        self.record = record
        self._unmapped: dict[str, list[UnmappedClasses]] = {}  # per policy, once per run
        # per (policy, phase) admitted: the tables without transactions it changes (accepted)
        self.unatomic: dict[tuple[str, str], frozenset[QName]] = {}

    def admit(
        self, policy: BoundPolicy, phase: BoundPhase, result: PhaseResult, run_id: uuid.UUID
    ) -> bool:
        """Whether the phase may run; when not, `result` says why and the audit records it."""
        if phase.action in DESTRUCTIVE and not (
            self._approved(policy, result, run_id) and self._classes_known(policy, result, run_id)
        ):
            return False
        return self._transactions_hold(policy, phase, result, run_id)

    def _approved(self, policy: BoundPolicy, result: PhaseResult, run_id: uuid.UUID) -> bool:
        """Purge and archive run only for a policy version approved by enough people."""
        rules = rules_of(self.settings)
        schema = self.settings.schema_name
        state = approval_state(self.conn, schema, policy.name, policy.loaded.sha256, rules)
        if state.approved:
            return True
        result.not_approved = state.describe()
        logger.warning("{}/{}: not run, {}", policy.name, result.phase, result.not_approved)
        detail = {
            "policy": policy.name,
            "phase": result.phase,
            "approvals": len(state.counted),
            "required": state.required,
            "not_counted": [a.describe() for a in state.approvals if not a.valid],
            "policy_sha256": policy.loaded.sha256,
        }
        self.record.entry("phase_not_approved", "skipped", run_id, detail=detail)
        return False

    def _classes_known(self, policy: BoundPolicy, result: PhaseResult, run_id: uuid.UUID) -> bool:
        """Every class of the record's polymorphic columns must still be mapped or declared
        unrelated (read once per policy and run): a class that appeared since `check` has
        rows no record holds, and purging would leave those of purged subjects behind. The
        phase is refused otherwise."""
        if policy.name not in self._unmapped:
            self._unmapped[policy.name] = unmapped_classes(self.conn, policy)
        unmapped = self._unmapped[policy.name]
        if not unmapped:
            return True
        result.refused = "classes neither mapped nor declared unrelated: " + "; ".join(
            f"{u.column.label} {u.describe()}" for u in unmapped
        )
        self._refuse(
            policy,
            result,
            run_id,
            ("unmapped_classes", "map them in the policy, or declare them under unrelated_classes"),
            {"columns": [u.to_json() for u in unmapped]},
        )
        return False

    def _transactions_hold(
        self, policy: BoundPolicy, phase: BoundPhase, result: PhaseResult, run_id: uuid.UUID
    ) -> bool:
        """Every table the phase changes must still have transactions, or be accepted by the
        phase, read live: `check` refuses the others, but a table may have been converted
        (ALTER TABLE ... ENGINE=MyISAM) since the policies were bound. A batch there would
        not be atomic: the phase is refused (PostgreSQL: every table has, nothing is read)."""
        changed, live = changed_tables(self.conn, policy, phase)
        refused = unaccepted(phase, changed, live)
        unatomic = frozenset(q for q in changed if not live.get(q, False))
        if unatomic and phase.action == "archive":  # its intent could not complete a file
            refused = sorted(unatomic)
        if not refused:
            self.unatomic[(policy.name, phase.name)] = unatomic
            return True
        tables = [f"{schema}.{name}" for schema, name in refused]
        result.refused = not_atomic(phase.action, tables)
        self._refuse(
            policy,
            result,
            run_id,
            (
                "non_transactional",
                "convert them: an archive batch cut short there could not be completed"
                if phase.action == "archive"
                else "convert them, or accept them under the phase's accept_non_transactional",
            ),
            {"tables": tables},
        )
        return False

    def _refuse(
        self,
        policy: BoundPolicy,
        result: PhaseResult,
        run_id: uuid.UUID,
        reason: tuple[str, str],
        facts: dict[str, object],
    ) -> None:
        """Record a refused phase: its reason on the result, an error for the operator with
        what to do, and a `phase_refused` audit entry with the facts (never a value)."""
        refusal, remedy = reason
        result.refusal = refusal
        logger.error(
            "{}/{}: not run, {} ({}, then run 'retention check')",
            policy.name,
            result.phase,
            result.refused,
            remedy,
        )
        detail = {"policy": policy.name, "phase": result.phase, "reason": refusal, **facts}
        detail["policy_sha256"] = policy.loaded.sha256
        self.record.entry("phase_refused", "refused", run_id, detail=detail)
