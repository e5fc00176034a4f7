"""The plan: what is due, per policy and phase, as plain data.

Computed without writing anything (:mod:`retention.plan.compute`), printed by `retention plan`
and executed by `retention run`. The JSON shape is stable for scripts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from retention.audit.approvals import ApprovalState


@dataclass(frozen=True)
class PhasePlan:
    """One phase: how many subjects are due, held, undeterminable; rows per table it touches."""

    name: str
    action: str
    due_subjects: int
    held_subjects: int
    undeterminable_subjects: int
    rows: dict[str, int] = field(default_factory=dict)
    undeterminable_reasons: dict[str, int] = field(default_factory=dict)
    # of the due subjects, those a run keeps because their record shares a row with a record
    # that is not due (retention.rows.shared); counted by `retention plan` (with its rows)
    # where the policy has such rows, None otherwise
    shared_subjects: int | None = None
    # of an archive phase's due subjects, those whose end of retention (`retain_until`) cannot
    # be computed: archived into the group `undated`, never destroyed by itself (retention
    # archive list shows it for review), but for those a run keeps (`shared_subjects`), which
    # may be among them; None for other phases
    undated_subjects: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "action": self.action,
            "due_subjects": self.due_subjects,
            "held_subjects": self.held_subjects,
            "undeterminable_subjects": self.undeterminable_subjects,
            "undeterminable_reasons": dict(self.undeterminable_reasons),
            "rows": dict(self.rows),
        }
        if self.shared_subjects is not None:
            data["shared_subjects"] = self.shared_subjects
        if self.undated_subjects is not None:
            data["undated_subjects"] = self.undated_subjects
        return data


@dataclass(frozen=True)
class PolicyPlan:
    """One policy: its identity (name and SHA-256 of the file) and its phases."""

    name: str
    sha256: str
    subject_table: str
    subjects: int
    phases: tuple[PhasePlan, ...]
    approval: ApprovalState | None = None  # for policies with purge or archive phases
    # why a run would refuse its purge or archive phases whatever the approvals: classes of a
    # polymorphic column the policy neither maps nor declares unrelated (as check says)
    refused: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "sha256": self.sha256,
            "subject_table": self.subject_table,
            "subjects": self.subjects,
            "phases": [p.to_json() for p in self.phases],
        }
        if self.refused is not None:
            data["refused"] = self.refused
        if self.approval is not None:
            data["approval"] = {
                "required": self.approval.required,
                "approved": self.approval.approved,
                "by": [
                    {"name": a.by, "role": a.role, "at": a.at.isoformat()}
                    for a in self.approval.counted
                ],
                "not_counted": [
                    {"name": a.by, "at": a.at.isoformat(), "problem": a.problem}
                    for a in self.approval.approvals
                    if not a.valid
                ],
                "missing_roles": list(self.approval.missing_roles),
            }
        return data


@dataclass(frozen=True)
class LeftIntent:
    """A batch cut short on tables without transactions, whose intent the next run completes
    before anything else (retention.engine.intents): counts and names, never a key."""

    intent_id: int
    run_id: str
    policy: str
    phases: tuple[str, ...]
    subjects: int
    written: datetime  # UTC

    def describe(self) -> str:
        written = f"{self.written:%Y-%m-%d %H:%M:%S}"
        return (
            f"intent {self.intent_id} of run {self.run_id} (written {written} UTC; policy "
            f"{self.policy}, phase {', '.join(self.phases)}, {self.subjects} subject(s))"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "intent": self.intent_id,
            "run_id": self.run_id,
            "policy": self.policy,
            "phases": list(self.phases),
            "subjects": self.subjects,
            "written": (
                self.written if self.written.tzinfo else self.written.replace(tzinfo=UTC)
            ).isoformat(),
        }


@dataclass(frozen=True)
class Plan:
    """Every selected policy, as of `at`; `intents`: batches cut short that a run completes
    first (then it computes the plan again)."""

    at: date
    policies: tuple[PolicyPlan, ...]
    intents: tuple[LeftIntent, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "at": self.at.isoformat(),
            "policies": [p.to_json() for p in self.policies],
        }
        if self.intents:  # only where a batch was cut short (never on PostgreSQL)
            data["intents"] = [i.to_json() for i in self.intents]
        return data
