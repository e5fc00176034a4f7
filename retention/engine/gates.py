"""Gates: what must hold before a run, or a phase of it, changes anything.

- One run at a time: the run lock (retention.store.lock), held from the checks to the
  exposure snapshot after the run.
- Before the run: the database and host clocks agree, each phase's due subjects stay within
  the limits (or the override is audited with its reason); privileges and coverage gaps are
  reported (warnings, retention.engine.safety).
- Before a destructive phase's first batch: enough approvals of the policy's version, and
  every class of the record's polymorphic columns still mapped or declared unrelated.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger

from retention.audit.approvals import DESTRUCTIVE, approval_state, rules_of
from retention.discovery.coverage import current_gaps
from retention.engine.outcome import PhaseResult, RunOptions
from retention.engine.record import RunRecord
from retention.engine.safety import LimitExceeded, limit_violations, refuse_large
from retention.engines import Connection
from retention.plan.model import Plan
from retention.policy.bound import BoundPolicy
from retention.policy.data_checks import UnmappedClasses, unmapped_classes
from retention.settings import Settings
from retention.store import lock


@contextmanager
def run_lock(conn: Connection, schema: str, wait_seconds: float) -> Iterator[None]:
    """The run lock while the block runs (:class:`RunInProgressError` when another run
    holds it after `wait_seconds`); always released."""
    lock.acquire(conn, schema, wait_seconds)
    try:
        yield
    finally:
        lock.release(conn)


def over_limits(plan: Plan, settings: Settings, allow_large: bool) -> list[LimitExceeded]:
    """The phases above the limits; refused (:class:`SafetyError`) unless `allow_large`."""
    violations = limit_violations(plan, settings)
    if violations and not allow_large:
        refuse_large(violations)
    return violations


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


class PhaseGates:
    """Before a destructive phase's first batch, in one run: approvals, then classes."""

    def __init__(self, conn: Connection, settings: Settings, record: RunRecord) -> None:
        self.conn = conn
        self.settings = settings
        self.record = record
        self._unmapped: dict[str, list[UnmappedClasses]] = {}  # per policy, once per run

    def admit(
        self, policy: BoundPolicy, action: str, result: PhaseResult, run_id: uuid.UUID
    ) -> bool:
        """Whether the phase may run; when not, `result` says why and the audit records it."""
        if action not in DESTRUCTIVE:
            return True
        return self._approved(policy, result, run_id) and self._classes_known(
            policy, result, run_id
        )

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
        logger.error(
            "{}/{}: not run, {} (map them in the policy, or declare them under "
            "unrelated_classes, then run 'retention check')",
            policy.name,
            result.phase,
            result.refused,
        )
        detail = {
            "policy": policy.name,
            "phase": result.phase,
            "reason": "unmapped_classes",
            "columns": [u.to_json() for u in unmapped],
            "policy_sha256": policy.loaded.sha256,
        }
        self.record.entry("phase_refused", "refused", run_id, detail=detail)
        return False
