"""Execute a plan: every selected phase, batch after batch, until done, stopped or failed.

Order of a run: take the run lock, check clocks and limits (nothing has changed yet), record the
run, then per phase: snapshot the due subjects into a temporary table (the plan's proposal) and
walk it in key order, one short transaction per batch. A stop request is honoured between
batches. A crash at any instant leaves whole batches done or not done; the next run recomputes
what is due and completes the work.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg
from loguru import logger
from psycopg import sql

from retention.archive.session import ArchiveSession, prepare_archives
from retention.audit.approvals import DESTRUCTIVE, approval_state
from retention.audit.trail import AuditTrail, Entry, actor, mirror
from retention.discovery.coverage import current_gaps
from retention.engine import lock
from retention.engine.batch import BatchContext, run_batch
from retention.engine.progress import Reporter, reporter
from retention.engine.safety import (
    check_clock,
    limit_violations,
    privilege_warnings,
    refuse_large,
)
from retention.keys import Key
from retention.plan.clock import clock_query
from retention.plan.compute import compute_plan
from retention.plan.model import Plan
from retention.plan.rows import due_keys
from retention.policy.bind import BoundPolicy
from retention.policy.expr import Params
from retention.report.snapshots import record_after_run
from retention.settings import Settings
from retention.store.schema import holds_table


@dataclass
class PhaseResult:
    """What a phase did in this run."""

    policy: str
    phase: str
    action: str
    proposed: int
    acted: int = 0
    locked_elsewhere: int = 0
    no_longer_due: int = 0
    batches: int = 0
    skipped_batches: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    error: str | None = None
    not_approved: str | None = None


@dataclass
class RunReport:
    """The outcome of a run."""

    run_id: uuid.UUID
    outcome: str = "running"
    phases: list[PhaseResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    plan: Plan | None = None
    coverage_gaps: list[str] | None = None  # None: no scan stored yet


@dataclass(frozen=True)
class RunOptions:
    """What to run and how."""

    at: date
    phase: str | None = None
    allow_large: bool = False
    reason: str | None = None
    command: str = "run"
    lock_wait_seconds: float = 0.0


class Runner:
    """Runs phases of bound policies against one connection."""

    archives: ArchiveSession | None = None  # set at run start when archive phases are due

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        settings: Settings,
        trail: AuditTrail,
        *,
        pseudonym_key: Key | None = None,
        stop: threading.Event | None = None,
        progress: Reporter | None = None,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.trail = trail
        self.pseudonym_key = pseudonym_key
        self.stop = stop or threading.Event()
        self.progress = progress or reporter()
        self.schema = settings.schema_name

    def plan(self, policies: list[BoundPolicy], options: RunOptions) -> Plan:
        return run_plan(self.conn, policies, options, self.schema)

    def run(
        self,
        policies: list[BoundPolicy],
        options: RunOptions,
        *,
        all_policies: list[BoundPolicy] | None = None,
        plan: Plan | None = None,
    ) -> RunReport:
        """Lock, check, execute; always releases the lock and closes the run record.
        Coverage is judged against `all_policies` (default: `policies`), so a run restricted
        to one policy still reports what no policy covers. `plan`: the plan already shown to
        the operator (computed again otherwise); each batch re-checks under its locks anyway."""
        lock.acquire(self.conn, self.schema, options.lock_wait_seconds)
        try:
            return self._run_locked(policies, options, all_policies or policies, plan)
        finally:
            lock.release(self.conn)

    def _run_locked(
        self,
        policies: list[BoundPolicy],
        options: RunOptions,
        all_policies: list[BoundPolicy],
        shown: Plan | None,
    ) -> RunReport:
        check_clock(self.conn, self.settings)
        report = RunReport(uuid.uuid4())
        report.warnings = privilege_warnings(self.conn, policies)
        report.coverage_gaps = self._coverage_gaps(all_policies)
        plan = shown or self.plan(policies, options)
        report.plan = plan
        violations = limit_violations(plan, self.settings)
        if violations and not options.allow_large:
            refuse_large(violations)
        self._abandon_stale_runs()
        self._open_run(report, options)
        with logger.contextualize(run_id=str(report.run_id)):
            if violations:
                self._record(
                    "limit_override",
                    "allowed",
                    report,
                    detail={
                        "reason": options.reason or "",
                        "phases": [v.describe() for v in violations],
                    },
                )
            try:
                self.archives = prepare_archives(  # reconcile interrupted archives, expire groups
                    self.conn,
                    self.settings,
                    self.trail,
                    plan,
                    options.at,
                    report.run_id,
                    expire_groups=options.phase is None,
                )
                report.outcome = self._execute(plan, policies, options, report)
            except BaseException:
                report.outcome = "failed"
                raise
            finally:
                self._close_run(report)
            # the exposure after this run, for the report's trend (never fails the run)
            record_after_run(self.conn, all_policies, options.at, report.run_id, schema=self.schema)
        return report

    def _coverage_gaps(self, policies: list[BoundPolicy]) -> list[str] | None:
        """Personal columns of the last scan that no policy covers (logged at every run)."""
        gaps = current_gaps(self.conn, self.schema, policies)
        if gaps:
            logger.warning(
                "{} personal column(s) covered by no policy: {}",
                len(gaps),
                ", ".join(g.label for g in gaps),
            )
        return None if gaps is None else [g.render() for g in gaps]

    def _execute(
        self, plan: Plan, policies: list[BoundPolicy], options: RunOptions, report: RunReport
    ) -> str:
        holds = holds_table(self.conn, self.schema)
        by_name = {p.name: p for p in policies}
        for policy_plan in plan.policies:
            policy = by_name[policy_plan.name]
            for phase_plan in policy_plan.phases:
                if self.stop.is_set():
                    return "interrupted"
                result = PhaseResult(
                    policy.name, phase_plan.name, phase_plan.action, phase_plan.due_subjects
                )
                report.phases.append(result)
                if phase_plan.due_subjects == 0:
                    continue
                if not self._approved(policy, phase_plan.action, result, report):
                    continue
                ctx = BatchContext(
                    policy,
                    policy.phase(phase_plan.name),
                    options.at,
                    holds,
                    self.settings,
                    self.trail,
                    report.run_id,
                    self.pseudonym_key,
                    self.archives,
                )
                self._phase(ctx, result)
                if self.stop.is_set():
                    return "interrupted"
        return "failed" if any(r.error for r in report.phases) else "completed"

    def _approved(
        self, policy: BoundPolicy, action: str, result: PhaseResult, report: RunReport
    ) -> bool:
        """Purge and archive run only for a policy version approved by enough people."""
        if action not in DESTRUCTIVE:
            return True
        state = approval_state(
            self.conn,
            self.schema,
            policy.name,
            policy.loaded.sha256,
            self.settings.required_approvals,
        )
        if state.approved:
            return True
        result.not_approved = state.describe()
        logger.warning("{}/{}: not run, {}", policy.name, result.phase, result.not_approved)
        self._record(
            "phase_not_approved",
            "skipped",
            report,
            detail={
                "policy": policy.name,
                "phase": result.phase,
                "approvals": len(state.approvals),
                "required": state.required,
                "policy_sha256": policy.loaded.sha256,
            },
        )
        return False

    def _phase(self, ctx: BatchContext, result: PhaseResult) -> None:
        total = self._snapshot_due(ctx)
        self.progress.start(f"{ctx.policy.name}/{ctx.phase.name} ({ctx.phase.action})", total)
        try:
            last: Any = None
            while not self.stop.is_set():
                keys = self._next_keys(last)
                if not keys:
                    break
                last = keys[-1]
                if not self._batch(ctx, keys, result):
                    break
                self.progress.advance(len(keys))
        finally:
            self.progress.finish()
            self.conn.execute("DROP TABLE IF EXISTS pg_temp.retention_due")

    def _batch(self, ctx: BatchContext, keys: list[Any], result: PhaseResult) -> bool:
        """One batch; False stops the phase (an error that another batch would repeat)."""
        try:
            done = run_batch(self.conn, ctx, keys)
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            result.skipped_batches += 1
            logger.warning(
                "batch of {} subject(s) skipped, retried on a later run: {}",
                len(keys),
                _describe(exc),
            )
            self._record(
                "batch_skipped",
                "skipped",
                None,
                ctx=ctx,
                detail={"proposed": len(keys), "reason": _describe(exc)},
            )
            return True
        except psycopg.OperationalError:
            raise  # connection lost: nothing of this batch committed; the caller retries
        except psycopg.Error as exc:
            result.error = _describe(exc)
            logger.error(
                "{}/{}: batch failed, nothing of it was changed: {}",
                ctx.policy.name,
                ctx.phase.name,
                result.error,
            )
            self._record(
                "batch_failed",
                "error",
                None,
                ctx=ctx,
                detail={"proposed": len(keys), "error": result.error},
            )
            return False
        if done.entry is not None:
            mirror(done.entry)
        result.batches += 1
        result.acted += done.acted
        result.locked_elsewhere += done.locked_elsewhere
        result.no_longer_due += done.no_longer_due
        result.rows.update(done.rows)
        return True

    def _snapshot_due(self, ctx: BatchContext) -> int:
        clock = clock_query(ctx.policy, ctx.phase, ctx.at, holds_table=ctx.holds)
        params = Params(prefix="n")
        self.conn.execute("DROP TABLE IF EXISTS pg_temp.retention_due")
        self.conn.execute(
            sql.SQL("CREATE TEMPORARY TABLE retention_due AS {}").format(
                due_keys(ctx.policy, ctx.phase, clock.query, params)
            ),
            {**clock.params, **params.values},
        )
        self.conn.execute("CREATE INDEX ON pg_temp.retention_due (k)")
        row = self.conn.execute("SELECT count(*) FROM pg_temp.retention_due").fetchone()
        return int(row[0]) if row else 0

    def _next_keys(self, last: Any) -> list[Any]:
        size = self.settings.batch_size
        if last is None:
            rows = self.conn.execute(
                "SELECT k FROM pg_temp.retention_due ORDER BY k LIMIT %s", (size,), prepare=False
            )  # the table is recreated per phase, with another key type
        else:
            rows = self.conn.execute(
                "SELECT k FROM pg_temp.retention_due WHERE k > %s ORDER BY k LIMIT %s",
                (last, size),
                prepare=False,
            )
        return [row[0] for row in rows]

    # -- run records and audit entries ------------------------------------------------------
    def _abandon_stale_runs(self) -> None:
        """We hold the lock: any run still marked running died without closing."""
        rows = self.conn.execute(
            sql.SQL(
                "UPDATE {} SET outcome = 'abandoned', ended_at = now() WHERE outcome = 'running' "
                "RETURNING run_id"
            ).format(sql.Identifier(self.schema, "runs"))
        ).fetchall()
        for (run_id,) in rows:
            self.trail.record(
                self.conn,
                Entry(
                    event="run_abandoned",
                    outcome="abandoned",
                    run_id=run_id,
                    detail={"found_by": "next run"},
                ),
            )

    def _open_run(self, report: RunReport, options: RunOptions) -> None:
        self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (run_id, command, host, os_user, pid) VALUES (%s, %s, %s, %s, %s)"
            ).format(sql.Identifier(self.schema, "runs")),
            (
                report.run_id,
                options.command,
                socket.gethostname(),
                self.trail.actor.get("os_user", ""),
                os.getpid(),
            ),
        )
        self._record(
            "run_start",
            "started",
            report,
            detail={
                "at": options.at.isoformat(),
                "phase": options.phase,
                "command": options.command,
            },
        )

    def _close_run(self, report: RunReport) -> None:
        if self.conn.closed or self.conn.broken:
            return
        totals: Counter[str] = Counter()
        for phase in report.phases:
            totals.update(phase.rows)
        event = {"interrupted": "run_interrupted", "failed": "run_failed"}.get(
            report.outcome, "run_end"
        )
        self._record(
            event,
            report.outcome,
            report,
            detail={
                "subjects": sum(p.acted for p in report.phases),
                "rows": dict(totals),
                "skipped_batches": sum(p.skipped_batches for p in report.phases),
                "errors": [p.error for p in report.phases if p.error],
            },
        )
        self.conn.execute(
            sql.SQL("UPDATE {} SET outcome = %s, ended_at = now() WHERE run_id = %s").format(
                sql.Identifier(self.schema, "runs")
            ),
            (report.outcome, report.run_id),
        )

    def _record(
        self,
        event: str,
        outcome: str,
        report: RunReport | None,
        *,
        ctx: BatchContext | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        run_id = report.run_id if report else (ctx.run_id if ctx else None)
        self.trail.record(
            self.conn,
            Entry(
                event=event,
                outcome=outcome,
                run_id=run_id,
                policy=ctx.policy.name if ctx else None,
                policy_sha256=ctx.policy.loaded.sha256 if ctx else None,
                phase=ctx.phase.name if ctx else None,
                action=ctx.phase.action if ctx else None,
                detail=detail or {},
            ),
        )


def run_plan(
    conn: psycopg.Connection[Any],
    policies: list[BoundPolicy],
    options: RunOptions,
    schema: str,
    *,
    rows: bool = False,
) -> Plan:
    """The plan a run executes: the same computation as `retention plan` (rows per table only
    when asked: a dry run shows them, a run only needs the subjects for its limits)."""
    plan = compute_plan(conn, policies, options.at, schema=schema, rows=rows)
    return plan if options.phase is None else _only_phase(plan, options.phase)


def _only_phase(plan: Plan, phase: str) -> Plan:
    from dataclasses import replace

    policies = tuple(
        replace(p, phases=tuple(ph for ph in p.phases if ph.name == phase)) for p in plan.policies
    )
    return replace(plan, policies=tuple(p for p in policies if p.phases))


def _describe(exc: psycopg.Error) -> str:
    """The server's primary message only: the detail line may quote row values."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return primary or type(exc).__name__


def make_trail(conn: psycopg.Connection[Any], settings: Settings, audit_key: Key) -> AuditTrail:
    return AuditTrail(settings.schema_name, audit_key, actor(conn))


__all__ = ["PhaseResult", "RunOptions", "RunReport", "Runner", "make_trail", "run_plan"]
