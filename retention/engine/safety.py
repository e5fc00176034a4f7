"""Checks made before anything changes: clocks, privileges, and the size of each phase."""

from __future__ import annotations

import time
from dataclasses import dataclass

from loguru import logger

from retention.engines import Connection, engine_of
from retention.errors import RetentionError
from retention.plan.model import Plan
from retention.policy.bound import BoundPolicy
from retention.settings import Settings


class SafetyError(RetentionError):
    """A run refused before changing anything."""

    exit_code = 5


@dataclass(frozen=True)
class LimitExceeded:
    """One phase above a safety limit."""

    policy: str
    phase: str
    due: int
    subjects: int
    limit: str

    def describe(self) -> str:
        return f"{self.policy}/{self.phase}: {self.due:,} subjects due, {self.limit}"


def check_clock(conn: Connection, settings: Settings) -> float:
    """Refuse when the database and host clocks differ by more than the allowed skew."""
    skew = abs(engine_of(conn).session.server_epoch(conn) - time.time())
    if skew > settings.max_clock_skew_seconds:
        raise SafetyError(
            f"the database clock and this host's clock differ by {skew:.0f} s "
            f"(more than {settings.max_clock_skew_seconds} s): due dates would be wrong",
            hint="fix NTP on both machines, or raise max_clock_skew_seconds",
        )
    return skew


def privilege_warnings(conn: Connection, policies: list[BoundPolicy]) -> list[str]:
    """Loud warnings when connected as a superuser or as the owner of a table acted on."""
    account = engine_of(conn).session.account(conn)
    warnings = []
    if account.superuser:
        warnings.append(
            f"connected as superuser '{account.name}': a least-privilege role is safer "
            "(a superuser can disable the audit trail's append-only trigger)"
        )
    owned = sorted(
        {
            t.label
            for p in policies
            for q in p.graph.tables
            if (t := p.table(q)).owner == account.name
        }
    )
    if owned and not account.superuser:
        warnings.append(
            f"connected as the owner of {', '.join(owned)}: a dedicated role "
            "with only the needed privileges is safer"
        )
    for text in warnings:
        logger.warning(text)
    return warnings


def limit_violations(plan: Plan, settings: Settings) -> list[LimitExceeded]:
    """Phases whose due subjects exceed the maximum number or share per run."""
    found = []
    for policy in plan.policies:
        for phase in policy.phases:
            due, total = phase.due_subjects, max(policy.subjects, 1)
            if due > settings.max_subjects_per_phase:
                found.append(
                    LimitExceeded(
                        policy.name,
                        phase.name,
                        due,
                        total,
                        f"over the maximum of {settings.max_subjects_per_phase:,} "
                        f"by {due - settings.max_subjects_per_phase:,}",
                    )
                )
            elif due / total > settings.max_share_per_phase:
                found.append(
                    LimitExceeded(
                        policy.name,
                        phase.name,
                        due,
                        total,
                        f"{due / total:.1%} of {total:,} subjects, over the maximum "
                        f"share of {settings.max_share_per_phase:.0%}",
                    )
                )
    return found


class LimitsRefusedError(SafetyError):
    """A run refused by its safety limits; `violations` says which phases, by how much."""

    def __init__(self, violations: list[LimitExceeded]) -> None:
        lines = "\n".join(f"  - {v.describe()}" for v in violations)
        super().__init__(
            f"refusing to run: safety limits exceeded, nothing was changed:\n{lines}",
            hint="check the plan (retention plan); to go ahead, rerun with "
            "--allow-large --reason 'why' (audited), or raise max_subjects_per_phase / "
            "max_share_per_phase",
        )
        self.violations = violations


def refuse_large(violations: list[LimitExceeded]) -> None:
    raise LimitsRefusedError(violations)
