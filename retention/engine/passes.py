"""The plan's passes executed: per policy, per group of phases sharing a pass, the phase gates,
then the pass's batches in walk order, one after the other or side by side (setting workers).

A stop request is honoured between batches; a pass whose batch failed stops, the others go on.
The run's due tables are dropped once the passes end.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from retention.engine.attempt import PassBatches
from retention.engine.batch import BatchContext
from retention.engine.connections import Connections, closing
from retention.engine.due_keys import batches
from retention.engine.gates import PhaseGates
from retention.engine.journal import Journal
from retention.engine.outcome import PhaseResult, RunReport
from retention.engine.pace import Pace
from retention.engine.progress import Reporter
from retention.engine.record import RunRecord
from retention.engine.workers import walk
from retention.engines import Connection, engine_of
from retention.plan.compute import snapshot_pass
from retention.plan.model import PhasePlan, Plan
from retention.plan.passes import DueTables, group_phases
from retention.policy.actions import spec_of
from retention.policy.bound import BoundPhase, BoundPolicy
from retention.settings import Settings

ContextOf = Callable[[BoundPolicy, BoundPhase], BatchContext]  # what a phase's batches share


@dataclass
class Passes:
    """The passes of one run, on its connections."""

    connections: Connections
    settings: Settings
    record: RunRecord
    gates: PhaseGates
    due: DueTables
    stop: threading.Event
    progress: Reporter
    journal: Journal | None = None  # where batches on tables without transactions write intents
    guard: threading.Lock = field(default_factory=threading.Lock)

    def execute(
        self, plan: Plan, policies: list[BoundPolicy], context: ContextOf, report: RunReport
    ) -> str:
        """Every pass of `plan`, each phase's result added to `report`; the run's outcome."""
        try:
            for policy, planned, phases in _groups(plan, policies):
                if self.stop.is_set():
                    return "interrupted"
                if self._group(policy, planned, phases, context, report) and self.stop.is_set():
                    return "interrupted"
        finally:
            if not self.connections.lost:
                self.due.drop(self.connections.main)
        return "failed" if any(r.error or r.refused for r in report.phases) else "completed"

    def _group(
        self,
        policy: BoundPolicy,
        planned: dict[str, PhasePlan],
        phases: tuple[BoundPhase, ...],
        context: ContextOf,
        report: RunReport,
    ) -> bool:
        """The results of a group of phases; its pass when a phase has due subjects and
        passes its gates. False when no pass ran."""
        results = [
            PhaseResult(policy.name, p.name, p.action, planned[p.name].due_subjects) for p in phases
        ]
        report.phases += results
        active = [
            i
            for i, (phase, result) in enumerate(zip(phases, results, strict=True))
            if result.proposed and self.gates.admit(policy, phase, result, report.run_id)
        ]
        if not active:
            return False
        ctxs = [self._journaled(context(policy, phase)) for phase in phases]
        pace = Pace(self.settings.batch_size, self.settings.batch_seconds)
        self._pass(PassBatches(ctxs, results, active, self.record, self.progress, self.guard, pace))
        return True

    def _journaled(self, ctx: BatchContext) -> BatchContext:
        """A phase that changes tables without transactions writes intents (none on
        PostgreSQL)."""
        unatomic = self.gates.unatomic.get((ctx.policy.name, ctx.phase.name))
        if not unatomic or self.journal is None:
            return ctx
        return replace(ctx, unatomic=unatomic, journal=self.journal)

    def _pass(self, work: PassBatches) -> None:
        """Walk a pass's due subjects in order (key order; for archives, windows of keys each
        by end of retention, see retention.plan.passes), one batch after the other, or side by
        side when the pass takes more than one batch and its actions allow it."""
        table = self._due_table(work.ctxs)
        total = self.due.sizes[table]
        phases = [c.phase for c in work.ctxs]
        label = ", ".join(f"{p.name} ({p.action})" for p in (phases[i] for i in work.active))
        self.progress.start(f"{work.ctxs[0].policy.name}/{label}", total)
        try:
            side_by_side = (
                total > work.pace.size()  # more than one batch
                and engine_of(self.connections.main).capabilities.disjoint_batch_locks
                and all(spec_of(phases[i].action).side_by_side for i in work.active)
            )
            with closing(self.connections.open() if side_by_side else []) as workers:
                rows = batches(self.connections.main, table, len(phases), work.pace, self.stop)
                if workers:
                    walk(workers, rows, work.attempt, self.stop, cancel=_cancel)
                    return
                for batch in rows:
                    if not work.attempt(self.connections.main, batch):
                        break
        finally:
            self.progress.finish()

    def _due_table(self, ctxs: list[BatchContext]) -> str:
        """The pass's due table, kept by the plan; when the plan came from elsewhere, the due
        subjects are snapshotted now."""
        policy, phases = ctxs[0].policy, tuple(c.phase for c in ctxs)
        names = tuple(p.name for p in phases)
        table = self.due.get(policy.name, names)
        if table is None:
            table = self.due.new(policy.name, names)
            self.due.sizes[table] = snapshot_pass(
                self.connections.main, policy, phases, ctxs[0].at, ctxs[0].holds, table
            )
        return table


def _groups(
    plan: Plan, policies: list[BoundPolicy]
) -> Iterator[tuple[BoundPolicy, dict[str, PhasePlan], tuple[BoundPhase, ...]]]:
    """Each group of phases sharing a pass, policy after policy, in the plan's order."""
    by_name = {p.name: p for p in policies}
    for policy_plan in plan.policies:
        policy = by_name[policy_plan.name]
        planned = {p.name: p for p in policy_plan.phases}
        for phases in group_phases(policy.phase(p.name) for p in policy_plan.phases):
            yield policy, planned, phases


def _cancel(conn: Connection) -> None:
    conn.cancel_safe()
