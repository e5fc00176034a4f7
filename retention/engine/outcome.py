"""What a run is asked to do (RunOptions) and what it did (RunReport, one PhaseResult per phase)."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from retention.engine.runs import AbandonedRun
from retention.plan.model import Plan


@dataclass
class PhaseResult:
    """What a phase did in this run."""

    policy: str
    phase: str
    action: str
    proposed: int
    acted: int = 0
    locked_elsewhere: int = 0
    gone: int = 0  # proposed, but no longer in the database when their batch came
    no_longer_due: int = 0
    shared: int = 0  # due, but kept: their record shares a row with another subject's
    batches: int = 0
    skipped_batches: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    not_approved: str | None = None
    refused: str | None = None  # not run, and why (the audit's `phase_refused` entry)
    # what refused it: 'unmapped_classes' (the record's links no longer cover the data) or
    # 'non_transactional' (a table it changes has no transactions now and is not accepted)
    refusal: str | None = None


@dataclass
class RunReport:
    """The outcome of a run."""

    run_id: uuid.UUID
    outcome: str = "running"
    phases: list[PhaseResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    plan: Plan | None = None
    coverage_gaps: list[str] | None = None  # None: no scan stored yet
    abandoned: list[AbandonedRun] = field(default_factory=list)  # earlier runs found dead


@dataclass(frozen=True)
class RunOptions:
    """What to run and how."""

    at: date
    phase: str | None = None
    allow_large: bool = False
    reason: str | None = None
    command: str = "run"
    lock_wait_seconds: float = 0.0
